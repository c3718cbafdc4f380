package clustertest

import (
	"bytes"
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/covid-backend/covid-backend/export"
)

// The app configuration as an app fetches it from any node of a 3-node
// region: the pointer names the version in force, and its zip is the same
// bytes on every node, signed with the region's export key (which the app
// already holds); a new version reaches every node.
func TestAppConfigOnEveryNode(t *testing.T) {
	c, key := keyServiceCluster(t)
	c.cli("appconfig", "set", "--addr", c.node("n2").url(), "--file", "../deploy/appconfig/example.json")
	fetch := func(id string) (uint32, []byte, bool) {
		status, body, _, err := c.tryGet(id, "/v1/appconfig")
		var pointer struct {
			Version uint32
			Zip     string
		}
		if err != nil || status != http.StatusOK || json.Unmarshal(body, &pointer) != nil {
			return 0, nil, false
		}
		status, zip, _, err := c.tryGet(id, pointer.Zip)
		return pointer.Version, zip, err == nil && status == http.StatusOK
	}
	var want []byte
	c.waitFor("version 1 on every node", 20*time.Second, func() bool {
		want = nil
		for _, id := range c.ids(3) {
			v, zip, ok := fetch(id)
			if !ok || v != 1 || want != nil && !bytes.Equal(zip, want) {
				return false
			}
			want = zip
		}
		return true
	})
	if _, err := export.VerifyBlob(want, &key.PublicKey, "test", "v1"); err != nil {
		t.Fatalf("an app verifying the configuration: %v", err)
	}
	c.cli("appconfig", "set", "--addr", c.node("n3").url(), "--file", "../deploy/appconfig/example.json")
	c.waitFor("version 2 on every node", 20*time.Second, func() bool {
		for _, id := range c.ids(3) {
			if v, _, ok := fetch(id); !ok || v != 2 {
				return false
			}
		}
		return true
	})
}
