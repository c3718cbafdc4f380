package api

import (
	"bytes"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/covid-backend/covid-backend/backup"
)

// A backup of one region restores into a new one; a backup of another
// region, of a newer format or with a snapshot that does not decode is
// refused, and so is a restore into a region that holds keys; nothing
// changes on a refusal.
func TestBackupAndRestoreRefusals(t *testing.T) {
	golden := func() time.Time { return time.Unix(1795867700, 0) }
	src := newTestServer(t, golden)
	registerGoldenAuthority(t, src)
	if w := src.do(http.MethodPost, "/v1/publish", goldenBody(t), jsonCT); w.Code != http.StatusOK {
		t.Fatalf("publish: %d %s", w.Code, w.Body)
	}
	w := src.admin(http.MethodGet, "/v1/admin/backup", nil)
	if w.Code != http.StatusOK {
		t.Fatalf("backup: %d %s", w.Code, w.Body)
	}
	file := w.Body.Bytes()
	h, f, err := backup.Open(bytes.NewReader(file), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	var snap bytes.Buffer
	snap.ReadFrom(f)
	backup.Discard(f)
	remake := func(change func(*backup.Header), body []byte) []byte {
		hh := h
		change(&hh)
		hh.Size = int64(len(body))
		var out bytes.Buffer
		backup.Write(&out, hh, bytes.NewReader(body))
		return out.Bytes()
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
