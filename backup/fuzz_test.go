package backup

import (
	"bytes"
	"testing"
)

// FuzzOpen: a file given to restore is either a whole backup, whose
// snapshot is exactly as long as its header says, or refused; never a
// panic, never more read than the header promises.
func FuzzOpen(f *testing.F) {
	var good bytes.Buffer
	key := Key([]byte("fuzz"))
	Write(&good, Header{Region: "r1", Size: 5}, bytes.NewReader([]byte("state")), key)
	for _, s := range [][]byte{good.Bytes(), nil, []byte(Magic), []byte(Magic + "{}\n")} {
		f.Add(s)
	}
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, data []byte) {
		h, file, err := Open(bytes.NewReader(data), dir, [][]byte{key})
		if err != nil {
			if file != nil {
				t.Fatal("a refused file left a snapshot open")
			}
			return
		}
		defer Discard(file)
		st, _ := file.Stat()
		if st.Size() != h.Size || h.Version != Version {
			t.Fatalf("opened a snapshot of %d bytes, header says %d (version %d)", st.Size(), h.Size, h.Version)
		}
	})
}
