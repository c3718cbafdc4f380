package verify

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/covid-backend/covid-backend/command"
	"github.com/covid-backend/covid-backend/fsm/fsmpb"
	"github.com/covid-backend/covid-backend/fsm/fsmtest"
)

// A number is read as its owner writes it and goes to the gateway in
// international format (issue 22: "0151 2345678" went out as
// "01512345678"); only mobile numbers of the regions served get an SMS
// (issue 21, finding 3: SMS pumping to chosen premium-rate numbers).
func TestPhoneRules(t *testing.T) {
	de := Phones{Region: "DE"}
	anyRegion := Phones{}
	dach := Phones{Region: "DE", Allowed: []string{"DE", "AT", "CH"}}
	cases := []struct {
		name  string
		rules Phones
		in    string
		want  string // "" refused
	}{
		{"national, read in the region", de, "0151 23456789", "+4915123456789"},
		{"international", de, "+49 (151) 2345-6789", "+4915123456789"},
		{"a neighbour allowed", dach, "+43 664 1234567", "+436641234567"},
		{"another region", de, "+43 664 1234567", ""},
		{"a fixed line", de, "+49 30 1234567", ""},
		{"premium rate", de, "+49 900 1234567", ""},
		{"premium rate abroad", anyRegion, "+1 900 555 0100", ""},
		{"any region's mobile", anyRegion, "+1 202 555 0143", "+12025550143"},
		{"national without a region", anyRegion, "0151 23456789", ""},
		{"not a number", de, "call me", ""},
		{"too short", de, "+49 151", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tc.rules.Check(tc.in)
			switch {
			case tc.want == "" && (err == nil || err.Code != CodePhoneInvalid || err.Status != http.StatusBadRequest):
				t.Fatalf("%q: %q %v, want phone_number_invalid", tc.in, got, err)
			case tc.want != "" && (err != nil || got != tc.want):
				t.Fatalf("%q: %q %v, want %q", tc.in, got, err, tc.want)
			}
		})
	}
}

// A node sends at most Phones.PerHour SMS; past it a code to be sent is
// expired and the answer says why (503 sms_quota_reached), so that a
// flood of user reports to numbers that pass the rules stops there.
func TestSMSQuota(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	region := fsmtest.New(func() time.Time { return now })
	if err := command.PutProvider(context.Background(), region, &fsmpb.Provider{Id: "lab", TokenHash: make([]byte, 32)}); err != nil {
		t.Fatal(err)
	}
	gateway := &countingGateway{}
	iss := NewIssuer(IssuerConfig{Region: region, CodeKeys: [][]byte{[]byte("key")}, SMS: gateway, RegionName: "test",
		Phones: Phones{PerHour: 2}, Now: func() time.Time { return now }, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	req := IssueRequest{TestType: "confirmed", TestDate: now.UTC().Format("2006-01-02"), Phone: "+1 202 555 0143"}
	for i := range 2 {
		if _, err := iss.Issue(context.Background(), "lab", "test", req); err != nil {
			t.Fatalf("SMS %d of 2: %v", i+1, err)
		}
	}
	resp, err := iss.Issue(context.Background(), "lab", "test", req)
	if err == nil || err.Code != CodeSMSQuota || err.Status != http.StatusServiceUnavailable {
		t.Fatalf("SMS 3 of 2: %+v %v, want 503 sms_quota_reached", resp, err)
	}
	if gateway.sent() != 2 {
		t.Fatalf("the gateway got %d messages, want 2", gateway.sent())
	}
}

// countingGateway counts the messages it is given.
type countingGateway struct {
	mu sync.Mutex
	n  int
}

func (g *countingGateway) Send(context.Context, string, string) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.n++
	return nil
}

func (g *countingGateway) sent() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.n
}

func TestPhoneRegionsValidate(t *testing.T) {
	if err := (Phones{Region: "DE", Allowed: []string{"at", "CH"}}).Validate(); err != nil {
		t.Fatal(err)
	}
	if err := (Phones{Region: "Germany"}).Validate(); err == nil {
		t.Fatal("a region that is no ISO 3166-1 code was taken")
	}
}
