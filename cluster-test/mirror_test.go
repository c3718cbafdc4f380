package clustertest

import (
	"bytes"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// A node's export mirror, served by Debian's nginx with the shipped
// configuration, gives every download byte for byte as the node does,
// with the same cache headers.
func TestExportMirrorBehindNginx(t *testing.T) {
	nginx, err := nginxPath()
	if err != nil {
		t.Fatalf("nginx not found (.ci/run installs Debian's nginx): %v", err)
	}
	mirrors := t.TempDir()
	_, exportFlags := exportKey(t, t.TempDir())
	c := newCluster(t, append(exportFlags, "--seal-interval", "1s", "--seal-min-keys", "50")...)
	c.nodeFlags = func(ip string) []string { return []string{"--export-dir", filepath.Join(mirrors, ip)} }
	c.form(3)
	mirror := filepath.Join(mirrors, c.ip(1)) // n1's, behind nginx
	acked := &ackSet{}
	for range 3 {
		keys, err := c.upload(c.node("n1").url())
		if err != nil {
			t.Fatal(err)
		}
		acked.add(keys)
	}
	// nginx with the shipped server block, on a free port, this mirror.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	shipped, err := os.ReadFile("../deploy/nginx/covid-exports.conf")
	if err != nil {
		t.Fatal(err)
	}
	server := strings.NewReplacer("listen 8081;", fmt.Sprintf("listen 127.0.0.1:%d;", port),
		"root /var/lib/covid-backend/exports;", "root "+mirror+";").Replace(string(shipped))
	dir := t.TempDir()
	conf := filepath.Join(dir, "nginx.conf")
	writeFile(t, conf, []byte(fmt.Sprintf("user root;\ndaemon off;\npid %s/nginx.pid;\nerror_log %s/error.log;\nevents {}\nhttp {\naccess_log off;\n%s\n}\n", dir, dir, server)))
	cmd := exec.Command(nginx, "-c", conf, "-p", dir)
	if out, err := exec.Command(nginx, "-t", "-c", conf, "-p", dir).CombinedOutput(); err != nil {
		t.Fatalf("nginx -t: %v %s", err, out)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	base := fmt.Sprintf("http://127.0.0.1:%d/", port)
	fetch := func(url string) (int, []byte, http.Header) {
		resp, err := c.client.Get(url)
		if err != nil {
			return 0, nil, nil
		}
		defer resp.Body.Close()
		var b bytes.Buffer
		b.ReadFrom(resp.Body)
		return resp.StatusCode, b.Bytes(), resp.Header
	}
	c.waitFor("the mirror and nginx to list the sealed keys", 30*time.Second, func() bool {
		status, list, _ := fetch(base + "v1/exports/batches.txt")
		return status == http.StatusOK && len(list) > 0 && exportHolds(t, c, "n1", strings.Fields(string(list)), acked.snapshot())
	})
	for _, list := range []string{"v1/exports/index.txt", "v1/exports/batches.txt"} {
		c.waitFor(list+" alike from nginx and the node", 10*time.Second, func() bool {
			_, want, _ := c.get("n1", "/"+list)
			_, got, _ := fetch(base + list)
			return bytes.Equal(got, want)
		})
		_, names, _ := fetch(base + list)
		for _, name := range strings.Fields(string(names)) {
			_, want, wantHeader := c.get("n1", "/"+name)
			status, got, header := fetch(base + name)
			if status != http.StatusOK || !bytes.Equal(got, want) {
				t.Fatalf("nginx serves %s unlike the node (%d)", name, status)
			}
			if header.Get("Cache-Control") != wantHeader.Get("Cache-Control") {
				t.Fatalf("%s: Cache-Control %q from nginx, %q from the node", name, header.Get("Cache-Control"), wantHeader.Get("Cache-Control"))
			}
		}
	}
}
