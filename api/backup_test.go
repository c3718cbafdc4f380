package api

import (
	"bytes"
	"net/http"
	"strings"
	"testing"
	"time"

	"filippo.io/age"

	"github.com/covid-backend/covid-backend/backup"
)

// A backup leaves the node only encrypted to an operator's age recipient;
// decrypted, it restores into a new region of the same key. A backup of
// another region, of a newer format, with a snapshot that does not
// decode, still encrypted, or forged without the region's key is refused,
// and so is a restore into a region that holds keys; nothing changes on a
// refusal.
func TestBackupAndRestoreRefusals(t *testing.T) {
	golden := func() time.Time { return time.Unix(1795867700, 0) }
	src := newTestServer(t, golden)
	registerGoldenAuthority(t, src)
	if w := src.do(http.MethodPost, "/v1/publish", goldenBody(t), jsonCT); w.Code != http.StatusOK {
		t.Fatalf("publish: %d %s", w.Code, w.Body)
	}
	if w := src.admin(http.MethodGet, "/v1/admin/backup", nil); w.Code != http.StatusBadRequest || !strings.Contains(w.Body.String(), "recipient") {
		t.Fatalf("a backup without a recipient: %d %s, want 400 (it leaves only encrypted)", w.Code, w.Body)
	}
	operator, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	w := src.admin(http.MethodGet, "/v1/admin/backup?recipient="+operator.Recipient().String(), nil)
	if w.Code != http.StatusOK {
		t.Fatalf("backup: %d %s", w.Code, w.Body)
	}
	sealed := w.Body.Bytes()
	clear, err := backup.Unseal(bytes.NewReader(sealed), []age.Identity{operator})
	if err != nil {
		t.Fatal(err)
	}
	var plain bytes.Buffer
	plain.ReadFrom(clear)
	file := plain.Bytes()
	h, f, err := backup.Open(bytes.NewReader(file), t.TempDir(), src.srv.backupKeys())
	if err != nil {
		t.Fatal(err)
	}
	var snap bytes.Buffer
	snap.ReadFrom(f)
	backup.Discard(f)
	remakeWith := func(key []byte, change func(*backup.Header), body []byte) []byte {
		hh := h
		change(&hh)
		hh.Size = int64(len(body))
		var out bytes.Buffer
		backup.Write(&out, hh, bytes.NewReader(body), key)
		return out.Bytes()
	}
	remake := func(change func(*backup.Header), body []byte) []byte {
		return remakeWith(src.srv.backupKeys()[0], change, body)
	}
	dst := newTestServer(t, golden)
	for name, tc := range map[string]struct {
		file []byte
		code string
	}{
		"other region":   {remake(func(h *backup.Header) { h.Region = "elsewhere" }, snap.Bytes()), "other_region"},
		"newer commands": {remake(func(h *backup.Header) { h.CommandVersion = 99 }, snap.Bytes()), "newer_format"},
		"bad snapshot":   {remake(func(*backup.Header) {}, []byte("not a snapshot")), "bad_backup"},
		"truncated":      {file[:len(file)-10], "bad_backup"},
		"still sealed":   {sealed, "bad_backup"},
		// A backup edited by someone without the region's key, its
		// trailer made anew (issue 21, finding 9).
		"forged": {remakeWith(backup.Key([]byte("a guess")), func(*backup.Header) {}, snap.Bytes()), "bad_backup"},
	} {
		w := dst.do(http.MethodPost, "/v1/admin/restore", tc.file, map[string]string{"Authorization": "Bearer " + testToken})
		if w.Code != http.StatusBadRequest || !strings.Contains(w.Body.String(), tc.code) {
			t.Errorf("%s: %d %s, want 400 %s", name, w.Code, w.Body, tc.code)
		}
		if dst.node.FSM().NumKeys() != 0 {
			t.Fatalf("%s changed the region", name)
		}
	}
	w = dst.do(http.MethodPost, "/v1/admin/restore", file, map[string]string{"Authorization": "Bearer " + testToken})
	if w.Code != http.StatusOK || dst.node.FSM().NumKeys() != src.node.FSM().NumKeys() {
		t.Fatalf("restore: %d %s, %d keys", w.Code, w.Body, dst.node.FSM().NumKeys())
	}
	w = dst.do(http.MethodPost, "/v1/admin/restore", file, map[string]string{"Authorization": "Bearer " + testToken})
	if w.Code != http.StatusConflict || !strings.Contains(w.Body.String(), "not_fresh") {
		t.Fatalf("a second restore: %d %s", w.Code, w.Body)
	}
	if w := dst.do(http.MethodPost, "/v1/admin/restore", file, nil); w.Code != http.StatusUnauthorized {
		t.Fatalf("a restore without the admin token: %d", w.Code)
	}
}
