package efgshub_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/covid-backend/covid-backend/command"
	"github.com/covid-backend/covid-backend/efgshub"
	"github.com/covid-backend/covid-backend/fsm/fsmpb"
	"github.com/covid-backend/covid-backend/fsm/fsmtest"
)

func TestPublicAddress(t *testing.T) {
	for _, tc := range []struct {
		addr   string
		public bool
	}{
		{"8.8.8.8", true}, {"2001:4860::8888", true}, {"127.0.0.1", false}, {"10.1.2.3", false}, {"172.16.0.1", false},
		{"192.168.1.1", false}, {"169.254.169.254", false}, {"100.64.0.1", false}, {"::1", false}, {"fc00::1", false},
		{"::ffff:127.0.0.1", false}, {"0.0.0.0", false}, {"0.1.2.3", false}, {"198.18.0.1", false}, {"240.0.0.1", false},
		{"64:ff9b::a00:1", false},
	} {
		if got := efgshub.PublicAddress(netip.MustParseAddr(tc.addr)); got != tc.public {
			t.Fatalf("%s: public %v, want %v", tc.addr, got, tc.public)
		}
	}
}

// Callback URLs are refused as EFGS refused them (not https, a query, a
// host of a private address), and a callback is never made to a private
// address however its name resolves when it is made.
func TestCallbackAddressChecks(t *testing.T) {
	ctx := context.Background()
	for _, raw := range []string{"http://8.8.8.8/cb", "https://8.8.8.8/cb?x=1", "https://127.0.0.1/cb", "https://localhost/cb", "https://10.0.0.1/cb"} {
		if err := efgshub.CheckCallbackURL(ctx, raw, false); err == nil {
			t.Fatalf("%s accepted", raw)
		}
	}
	if err := efgshub.CheckCallbackURL(ctx, "https://127.0.0.1/cb", true); err != nil {
		t.Fatalf("a private address where allowed: %v", err)
	}
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer srv.Close()
	_, err := efgshub.CallbackClient(false, nil).Get(srv.URL)
	if err == nil || !strings.Contains(err.Error(), "not a public address") {
		t.Fatalf("a call to a loopback server: %v", err)
	}
}

// The notifier calls every callback once for each new download batch,
// with its tag and day, none for the batches there when it started (but
// for the last two minutes'); a
// callback that keeps failing is tried 5 times, RetryAfter apart, then
// deleted.
func TestNotifier(t *testing.T) {
	var mu sync.Mutex
	calls := map[string][]url.Values{}
	failing := true
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		calls[r.URL.Path] = append(calls[r.URL.Path], r.URL.Query())
		if r.URL.Path == "/bad" && failing {
			w.WriteHeader(http.StatusInternalServerError)
		}
	}))
	defer srv.Close()
	count := func(path string) int {
		mu.Lock()
		defer mu.Unlock()
		return len(calls[path])
	}
	now := time.Date(2026, 12, 5, 23, 0, 0, 0, time.UTC)
	region := fsmtest.New(func() time.Time { return now })
	ctx := context.Background()
	put := func(c *fsmpb.Command) {
		t.Helper()
		if _, err := region.Apply(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	put(&fsmpb.Command{Type: fsmpb.CommandType_COMMAND_TYPE_PUT_HUB_COUNTRY, PutHubCountry: &fsmpb.HubCountry{Country: "DE",
		AuthThumbprints: []string{strings.Repeat("a", 64)}, Signers: []*fsmpb.HubSigner{{Thumbprint: strings.Repeat("b", 64), Pem: "p", AnchorSignature: "s"}}}})
	upload := func(tag string, key byte) {
		t.Helper()
		k := make([]byte, 16)
		k[0] = key
		if _, err := command.HubUpload(ctx, region, &fsmpb.HubUpload{Country: "DE", Tag: tag, SignerThumbprint: strings.Repeat("b", 64),
			Keys: [][]byte{k}, KeyData: [][]byte{k}}); err != nil {
			t.Fatal(err)
		}
	}
	upload("before", 1)
	now = now.Add(3 * time.Minute) // the batch before is older than a new leader announces again
	for _, id := range []string{"good", "bad"} {
		if err := command.PutHubCallback(ctx, region, &fsmpb.HubCallback{Country: "DE", Id: id, Url: srv.URL + "/" + id}); err != nil {
			t.Fatal(err)
		}
	}
	n := &efgshub.Notifier{State: region.State, Applier: region, Client: srv.Client(), RetryAfter: time.Minute,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	n.Step(ctx, now)
	upload("after", 2)
	n.Step(ctx, now)
	if count("/good") != 1 || count("/bad") != 1 {
		t.Fatalf("calls %v, want one each for the new batch", calls)
	}
	if q := calls["/good"][0]; q.Get("batchTag") != "20261205-2" || q.Get("date") != "2026-12-05" {
		t.Fatalf("the call's query: %v", q)
	}
	for i := 1; i < 5; i++ {
		n.Step(ctx, now.Add(time.Duration(i)*time.Minute-time.Second)) // not due yet
		n.Step(ctx, now.Add(time.Duration(i)*time.Minute))
	}
	if count("/bad") != 5 || count("/good") != 1 {
		t.Fatalf("after 5 tries: %v", calls)
	}
	if cbs := region.State.HubCountries()[0].GetCallbacks(); len(cbs) != 1 || cbs[0].GetId() != "good" {
		t.Fatalf("callbacks after the failing one's 5 tries: %v", cbs)
	}
}
