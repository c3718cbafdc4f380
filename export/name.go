package export

import (
	"fmt"
	"strings"
	"time"
)

// FileName names file n (1-based) of the window [start, end) as the
// reference does, ROOT/START-END-NNNNN.zip with Unix seconds, so that index
// files and mirrors written for the reference keep working. Pass the window's
// own end, not the per-file bumped End of File. A trailing slash on root is
// dropped; an empty root gives a bare name.
func FileName(root string, start, end time.Time, n int) string {
	name := fmt.Sprintf("%d-%d-%05d.zip", start.Unix(), end.Unix(), n)
	if root = strings.TrimSuffix(root, "/"); root == "" {
		return name
	}
	return root + "/" + name
}
