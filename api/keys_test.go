package api

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/covid-backend/covid-backend/publish"
)

// The keys of codes and revision tokens are their own secrets, rotated
// with an overlap: after a new key is put first, codes issued and tokens
// sealed under the old one stay valid, new ones are made with the new key,
// and a key dropped from the list voids what it made.
func TestCodeAndTokenKeyRotation(t *testing.T) {
	ts, key, now := revisionServer(t)
	old, fresh := bytes.Repeat([]byte{1}, 32), bytes.Repeat([]byte{2}, 32)
	// serve is another server on the same node, with the given keys.
	serve := func(codeKeys, tokenKeys [][]byte) func(method, path string, body []byte, headers map[string]string) *httptest.ResponseRecorder {
		srv, err := New(Config{AdminToken: testToken, Now: func() time.Time { return now }, Logger: ts.srv.cfg.Logger,
			CodeKeys: codeKeys, RevisionKeys: tokenKeys}, ts.node)
		if err != nil {
			t.Fatal(err)
		}
		other := &testServer{t: t, node: ts.node, srv: srv, h: srv.Handler()}
		return func(method, path string, body []byte, headers map[string]string) *httptest.ResponseRecorder {
			return other.do(method, path, body, headers)
		}
	}
	before := serve([][]byte{old}, [][]byte{old})
	token := newProvider(t, ts, "clinic")
	issue := func(do func(string, string, []byte, map[string]string) *httptest.ResponseRecorder) string {
		w := do(http.MethodPost, "/v1/codes", []byte(`{}`), map[string]string{"Authorization": "Bearer " + token, "Content-Type": "application/json"})
		if w.Code != http.StatusOK {
			t.Fatalf("issue code: %d %s", w.Code, w.Body)
		}
		var out CodeResponse
		json.Unmarshal(w.Body.Bytes(), &out)
		return out.Code
	}
	oldCode := issue(before)
	keys := dayKeys(now, 2)
	w := before(http.MethodPost, "/v1/publish", signedBody(t, key, now, "likely", "", keys), jsonCT)
	var first publish.Response
	json.Unmarshal(w.Body.Bytes(), &first)
	if w.Code != http.StatusOK || first.RevisionToken == "" {
		t.Fatalf("upload before the rotation: %d %s", w.Code, w.Body)
	}

	after := serve([][]byte{fresh, old}, [][]byte{fresh, old})
	if w := after(http.MethodPost, "/v1/publish", signedBody(t, key, now, "confirmed", first.RevisionToken, keys), jsonCT); w.Code != http.StatusOK {
		t.Fatalf("a token sealed before the rotation: %d %s", w.Code, w.Body)
	}
	if w := after(http.MethodPost, "/v1/publish", codeUploadOf(t, oldCode, 3), jsonCT); w.Code != http.StatusOK {
		t.Fatalf("a code issued before the rotation: %d %s", w.Code, w.Body)
	}
	newCode := issue(after)
	dropped := serve([][]byte{fresh}, [][]byte{fresh})
	// (The golden keys of the first code upload are stored: an answer about
	// them, not 401, shows the code was admitted.)
	if w := dropped(http.MethodPost, "/v1/publish", codeUploadOf(t, newCode, 14), jsonCT); w.Code == http.StatusUnauthorized {
		t.Fatalf("a code made with the new key, the old one dropped: %d %s", w.Code, w.Body)
	}
	oldOnly := serve([][]byte{old}, [][]byte{old})
	another := issue(after)
	if w := oldOnly(http.MethodPost, "/v1/publish", codeUploadOf(t, another, 5), jsonCT); w.Code != http.StatusUnauthorized {
		t.Fatalf("a code made with a key this server lacks: %d, want 401", w.Code)
	}
}
