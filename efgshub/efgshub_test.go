package efgshub_test

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/covid-backend/covid-backend/efgs"
	"github.com/covid-backend/covid-backend/efgs/efgspb"
	"github.com/covid-backend/covid-backend/efgs/efgstest"
)

// member is a country's credentials at the hub.
type member struct {
	client *http.Client
	cert   *x509.Certificate
	key    *ecdsa.PrivateKey
}

// serve is a gateway served over TLS (closed when the test ends) with
// countries registered, and their credentials.
func serve(t *testing.T, countries ...string) (*efgstest.Gateway, *httptest.Server, map[string]member) {
	t.Helper()
	gw, err := efgstest.New(time.Now)
	if err != nil {
		t.Fatal(err)
	}
	srv := efgstest.NewServer(gw)
	t.Cleanup(srv.Close)
	members := map[string]member{}
	for _, code := range countries {
		m := credentials(t, code, srv)
		if err := gw.AddCountry(code, m.client.Transport.(*http.Transport).TLSClientConfig.Certificates[0].Leaf, m.cert); err != nil {
			t.Fatal(err)
		}
		members[code] = m
	}
	return gw, srv, members
}

// credentials are a country's certificates and a client of srv that
// shows its authentication certificate.
func credentials(t *testing.T, country string, srv *httptest.Server) member {
	t.Helper()
	roots := x509.NewCertPool()
	roots.AddCert(srv.Certificate())
	authKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	auth, err := efgstest.Certificate(authKey, country, "auth "+country, false)
	if err != nil {
		t.Fatal(err)
	}
	signKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	sign, err := efgstest.Certificate(signKey, country, "sign "+country, false)
	if err != nil {
		t.Fatal(err)
	}
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots,
		Certificates: []tls.Certificate{{Certificate: [][]byte{auth.Raw}, PrivateKey: authKey, Leaf: auth}}}}}
	return member{client: client, cert: sign, key: signKey}
}

func keys(origin string, n int) []*efgspb.DiagnosisKey {
	start := uint32(time.Now().Unix()/600/144*144 - 2*144)
	out := make([]*efgspb.DiagnosisKey, n)
	for i := range out {
		data := make([]byte, 16)
		rand.Read(data)
		out[i] = &efgspb.DiagnosisKey{KeyData: data, RollingStartIntervalNumber: start, RollingPeriod: 144, TransmissionRiskLevel: 2,
			Origin: origin, ReportType: efgspb.ReportType_CONFIRMED_TEST, VisitedCountries: []string{"DE"}}
	}
	return out
}

// upload posts keys signed by signer as the member, with headers over
// the defaults; it returns the status and the answer.
func upload(t *testing.T, url string, m member, signer member, ks []*efgspb.DiagnosisKey, tag string, headers map[string]string) (int, string) {
	t.Helper()
	body, _ := proto.Marshal(&efgspb.DiagnosisKeyBatch{Keys: ks})
	sig, err := efgs.SignBatch(ks, signer.cert, signer.key)
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest(http.MethodPost, url+"/efgs/diagnosiskeys/upload", bytes.NewReader(body))
	req.Header.Set("Content-Type", efgs.ContentType)
	req.Header.Set("batchTag", tag)
	req.Header.Set("batchSignature", sig)
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := m.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	answer, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(answer)
}

// Bad uploads get the status EFGS gives and store nothing: a signature by
// a certificate the hub does not know, keys of another origin, 5,001
// keys, another content version, a client certificate of no country, and
// headers that claim another identity (the hub reads the TLS session). A
// replay of stored keys under a new tag, which EFGS stored, is 207 here
// and stores nothing.
func TestUploadRefusals(t *testing.T) {
	gw, srv, members := serve(t, "DE", "FR")
	de, fr := members["DE"], members["FR"]
	stranger := credentials(t, "NL", srv)
	stored := keys("DE", 3)
	if status, answer := upload(t, srv.URL, de, de, stored, "first", nil); status != http.StatusCreated {
		t.Fatalf("a good upload: %d %s", status, answer)
	}
	for _, tc := range []struct {
		name    string
		as      member
		signer  member
		keys    []*efgspb.DiagnosisKey
		headers map[string]string
		want    int
	}{
		{"signed by an unknown certificate", de, stranger, keys("DE", 2), nil, http.StatusBadRequest},
		{"signed by another country's certificate", de, fr, keys("DE", 2), nil, http.StatusBadRequest},
		{"keys of another origin", de, de, keys("FR", 2), nil, http.StatusBadRequest},
		{"5,001 keys", de, de, keys("DE", 5001), nil, http.StatusRequestEntityTooLarge},
		{"content version 2.0", de, de, keys("DE", 2), map[string]string{"Content-Type": "application/protobuf; version=2.0"}, http.StatusNotAcceptable},
		{"a client certificate of no country", stranger, stranger, keys("NL", 2), nil, http.StatusForbidden},
		{"a header claiming to be DE", stranger, stranger, keys("DE", 2), map[string]string{"X-SSL-Client-SHA256": "de", "X-SSL-Client-DN": "C=DE"}, http.StatusForbidden},
		{"FR's keys by DE claiming FR in a header", de, de, keys("FR", 2), map[string]string{"X-SSL-Client-DN": "C=FR"}, http.StatusBadRequest},
		{"stored keys under a new tag", de, de, append(keys("DE", 1), stored[1]), nil, http.StatusMultiStatus},
	} {
		status, answer := upload(t, srv.URL, tc.as, tc.signer, tc.keys, "tag of "+tc.name, tc.headers)
		if status != tc.want {
			t.Fatalf("%s: %d %s, want %d", tc.name, status, answer, tc.want)
		}
		if status == http.StatusMultiStatus {
			var m map[string][]int
			if err := json.Unmarshal([]byte(answer), &m); err != nil || len(m["201"]) != 1 || len(m["409"]) != 1 || m["409"][0] != 1 {
				t.Fatalf("%s: %s", tc.name, answer)
			}
		}
	}
	if status, _ := upload(t, srv.URL, de, de, keys("DE", 1), "first", nil); status != http.StatusConflict {
		t.Fatalf("a used tag: %d", status)
	}
	if n := gw.Uploads(); n != 1 {
		t.Fatalf("the hub stored %d uploads, want the one good one", n)
	}
}

// A country registers, lists and deletes its callbacks as at EFGS: a URL
// of a private address is 400, deleting an unknown callback 404.
func TestCallbackAPI(t *testing.T) {
	_, srv, members := serve(t, "DE")
	de := members["DE"]
	do := func(method, path string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest(method, srv.URL+"/efgs/diagnosiskeys/"+path, nil)
		resp, err := de.client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}
	for _, tc := range []struct {
		method, path string
		want         int
		body         string
	}{
		{http.MethodPut, "callback/a?url=https%3A%2F%2F127.0.0.1%2Fcb", http.StatusBadRequest, ""},
		{http.MethodPut, "callback/a?url=https%3A%2F%2F8.8.8.8%2Fcb", http.StatusOK, ""},
		{http.MethodGet, "callback", http.StatusOK, `[{"callbackId":"a","url":"https://8.8.8.8/cb"}]`},
		{http.MethodDelete, "callback/a", http.StatusOK, ""},
		{http.MethodDelete, "callback/a", http.StatusNotFound, ""},
		{http.MethodGet, "callback", http.StatusOK, `[]`},
	} {
		status, body := do(tc.method, tc.path)
		if status != tc.want || tc.body != "" && strings.TrimSpace(body) != tc.body {
			t.Fatalf("%s %s: %d %s, want %d %s", tc.method, tc.path, status, body, tc.want, tc.body)
		}
	}
}

// A download answers in the format its Accept asks for (protobuf or JSON,
// version 1.0), 415 for another type and 406 for another version, 410 for
// a day before the gateway keeps batches, as EFGS did; the JSON batch
// holds the same keys.
func TestDownloadFormats(t *testing.T) {
	_, srv, m := serve(t, "DE", "FR")
	sent := keys("DE", 2)
	if status, answer := upload(t, srv.URL, m["DE"], m["DE"], sent, "t", nil); status != http.StatusCreated {
		t.Fatalf("upload: %d %s", status, answer)
	}
	today := time.Now().UTC().Format(time.DateOnly)
	get := func(date, accept string) (int, http.Header, []byte) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, srv.URL+"/efgs/diagnosiskeys/download/"+date, nil)
		if accept != "" {
			req.Header.Set("Accept", accept)
		}
		resp, err := m["FR"].client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, resp.Header, body
	}
	for _, tc := range []struct {
		name, date, accept string
		want               int
		format             efgs.Format
	}{
		{"protobuf", today, efgs.ContentType, http.StatusOK, efgs.Protobuf},
		{"no Accept", today, "", http.StatusOK, efgs.Protobuf},
		{"JSON", today, "application/json; version=1.0", http.StatusOK, efgs.JSON},
		{"text", today, "text/plain", http.StatusUnsupportedMediaType, 0},
		{"version 2.0", today, "application/protobuf; version=2.0", http.StatusNotAcceptable, 0},
		{"20 days ago", time.Now().UTC().AddDate(0, 0, -20).Format(time.DateOnly), efgs.ContentType, http.StatusGone, 0},
		{"not a date", "yesterday", efgs.ContentType, http.StatusBadRequest, 0},
	} {
		status, h, body := get(tc.date, tc.accept)
		if status != tc.want {
			t.Fatalf("%s: %d %s", tc.name, status, body)
		}
		if status != http.StatusOK {
			continue
		}
		batch, err := efgs.DecodeBatch(tc.format, body)
		if tc.format == efgs.Protobuf && h.Get("X-Protobuf-Message") != "eu.interop.DiagnosisKeyBatch" {
			t.Fatalf("%s: X-Protobuf-Message %q", tc.name, h.Get("X-Protobuf-Message"))
		}
		if err != nil || len(batch.GetKeys()) != 2 || h.Get("Content-Type") != efgs.ContentTypeOf(tc.format) {
			t.Fatalf("%s: %d keys, %s (%v)", tc.name, len(batch.GetKeys()), h.Get("Content-Type"), err)
		}
	}
}

// A batch's audit names the signing certificate it was uploaded under,
// also after its country registered another one (it named the new one,
// and downloaders rejected the old batch's keys).
func TestAuditKeepsTheUploadsCertificate(t *testing.T) {
	gw, srv, m := serve(t, "DE", "FR")
	if status, answer := upload(t, srv.URL, m["DE"], m["DE"], keys("DE", 2), "t", nil); status != http.StatusCreated {
		t.Fatalf("upload: %d %s", status, answer)
	}
	renewed := credentials(t, "DE", srv)
	if err := gw.AddCountry("DE", renewed.client.Transport.(*http.Transport).TLSClientConfig.Certificates[0].Leaf, renewed.cert); err != nil {
		t.Fatal(err)
	}
	today := time.Now().UTC()
	req, _ := http.NewRequest(http.MethodGet, srv.URL+"/efgs/diagnosiskeys/audit/download/"+today.Format(time.DateOnly)+"/"+today.Format("20060102")+"-1", nil)
	resp, err := m["FR"].client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var audit []efgs.AuditEntry
	if err := json.NewDecoder(resp.Body).Decode(&audit); err != nil || len(audit) != 1 {
		t.Fatalf("audit: %v %v", audit, err)
	}
	if audit[0].UploaderSigningThumbprint != efgs.Thumbprint(m["DE"].cert) || !strings.Contains(audit[0].SigningCertificate, "BEGIN CERTIFICATE") {
		t.Fatalf("the audit names %s, want the upload's certificate", audit[0].UploaderSigningThumbprint)
	}
	block, _ := pem.Decode([]byte(audit[0].SigningCertificate))
	if block == nil || !bytes.Equal(block.Bytes, m["DE"].cert.Raw) {
		t.Fatal("the audit's certificate is not the upload's")
	}
}
