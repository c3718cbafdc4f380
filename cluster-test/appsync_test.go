package clustertest

import (
	"encoding/base64"
	"math/rand/v2"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/covid-backend/covid-backend/export"
)

// syncApp is an app of TestAppsSyncEachKeyOnce: it reads batches.txt and
// fetches either every name it has not seen or the lines after the last
// name it processed (the Android reference app's way: when that name is
// gone it starts again from the top).
type syncApp struct {
	name     string
	lastSeen bool
	every    time.Duration
	node     string // the node it polls, the one nearest to it
	seen     map[string]bool
	last     string
	restarts int // polls that found the last name gone
	fetched  map[string]int
	files    int
	next     time.Time
}

// poll reads batches.txt from the app's node and fetches what the app's
// way asks for; real tells the keys apps uploaded.
func (a *syncApp) poll(c *cluster, real func(string) bool) {
	c.t.Helper()
	id := a.node
	status, body, _ := c.get(id, "/v1/exports/batches.txt")
	if status != http.StatusOK {
		c.t.Fatalf("%s: batches.txt on %s: %d", a.name, id, status)
	}
	names := strings.Fields(string(body))
	var todo []string
	if a.lastSeen {
		from := slices.Index(names, a.last) + 1
		if from == 0 && a.last != "" {
			a.restarts++
		}
		todo = names[from:]
	} else {
		todo = slices.DeleteFunc(slices.Clone(names), func(n string) bool { return a.seen[n] })
	}
	for _, name := range todo {
		a.fetch(c, id, name, real)
		a.seen[name], a.last = true, name
	}
}

func (a *syncApp) fetch(c *cluster, id, name string, real func(string) bool) {
	c.t.Helper()
	status, data, _ := c.get(id, "/"+name)
	if status != http.StatusOK {
		c.t.Fatalf("%s: %s listed on %s answers %d", a.name, name, id, status)
	}
	a.files++
	for _, k := range exportKeys(c.t, data) {
		if real(k) {
			a.fetched[k]++
		}
	}
}

// exportKeys are the keys (base64) of an export file.
func exportKeys(t testing.TB, data []byte) []string {
	t.Helper()
	d, err := export.Decode(data)
	if err != nil {
		t.Fatalf("decode export file: %v", err)
	}
	var out []string
	for _, k := range slices.Concat(d.File.Keys, d.File.RevisedKeys) {
		out = append(out, base64.StdEncoding.EncodeToString(k.Data[:]))
	}
	return out
}

// A small simulated run of padding by the day with real processes: a
// 3-node region seals every second (about 10 keys a batch), its clock moved
// to just before a UTC midnight; uploads go to any node while apps of both
// ways of syncing poll batches.txt, each on its own node, past midnight. Each app
// fetches each key once (a duplicate factor of 1, at most 1.05 allowed),
// none ever finds its last name gone, and a fresh install then gets every
// key from index.txt in at most 15 files.
func TestAppsSyncEachKeyOnce(t *testing.T) {
	dir := t.TempDir()
	_, flags := exportKey(t, dir)
	c := newCluster(t, append(flags, "--seal-interval", "1s", "--padding-keys-per-day", "864000")...)
	c.form(3)
	midnight := time.Now().UTC().Truncate(24 * time.Hour).Add(24 * time.Hour)
	offset := midnight.Add(-25 * time.Second).Sub(time.Now())
	c.moveClock(time.Now().Add(offset))
	nodeNow := func() time.Time { return time.Now().Add(offset) }

	var mu sync.Mutex
	acked := map[string]bool{}
	real := func(k string) bool { mu.Lock(); defer mu.Unlock(); return acked[k] }
	var apps []*syncApp
	for _, every := range []time.Duration{2 * time.Second, 5 * time.Second} {
		for _, last := range []bool{false, true} {
			name := "every new name"
			if last {
				name = "last seen"
			}
			apps = append(apps, &syncApp{name: name + " every " + every.String(), lastSeen: last, every: every,
				node: c.ids(3)[len(apps)%3], seen: map[string]bool{}, fetched: map[string]int{}})
		}
	}
	ids := c.ids(3)
	if !nodeNow().Before(midnight) {
		t.Logf("the restarts took the region's clock past midnight: the run does not cross it")
	}
	for nodeNow().Before(midnight.Add(10 * time.Second)) {
		id := ids[rand.IntN(len(ids))]
		req, err := c.signer.RandomUpload(14, nodeNow())
		if err != nil {
			t.Fatal(err)
		}
		keys, err := c.publishRequest(c.node(id).url(), req)
		if err != nil {
			t.Fatalf("upload through %s: %v", id, err)
		}
		mu.Lock()
		for _, k := range keys {
			acked[k] = true
		}
		mu.Unlock()
		for _, a := range apps {
			if !time.Now().Before(a.next) {
				a.poll(c, real)
				a.next = time.Now().Add(a.every)
			}
		}
		time.Sleep(300 * time.Millisecond) // the pace of uploads, not a wait for a condition
	}
	// Every acknowledged key gets into a batch within a few seals.
	var fresh []string
	c.waitFor("every key in index.txt", 30*time.Second, func() bool {
		_, body, _ := c.get(ids[0], "/v1/exports/index.txt")
		fresh = strings.Fields(string(body))
		got := map[string]bool{}
		for _, name := range fresh {
			_, data, _ := c.get(ids[0], "/"+name)
			for _, k := range exportKeys(t, data) {
				got[k] = true
			}
		}
		for k := range acked {
			if !got[k] {
				return false
			}
		}
		return true
	})
	if len(fresh) > 15 || len(fresh) < 2 {
		t.Errorf("a fresh install reads %d files from index.txt across midnight; want 2 to 15", len(fresh))
	}
	for _, a := range apps {
		a.poll(c, real)
		fetches := 0
		for _, n := range a.fetched {
			fetches += n
		}
		dup := float64(fetches) / float64(len(acked))
		t.Logf("%s: %d files, %d of %d keys, each fetched %.3f times, %d restarts", a.name, a.files, len(a.fetched), len(acked), dup, a.restarts)
		if len(a.fetched) != len(acked) {
			t.Errorf("%s got %d of the %d keys", a.name, len(a.fetched), len(acked))
		}
		if dup > 1.05 {
			t.Errorf("%s fetched each key %.3f times; want at most 1.05", a.name, dup)
		}
		if a.restarts > 0 {
			t.Errorf("%s found the last name it processed gone %d times", a.name, a.restarts)
		}
	}
}
