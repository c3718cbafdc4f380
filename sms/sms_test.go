package sms

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
)

// The webhook posts the number and message as JSON with the bearer token,
// and an answer other than 2xx is an error.
func TestWebhook(t *testing.T) {
	var got struct{ To, Message, Auth string }
	status := http.StatusAccepted
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		json.NewDecoder(r.Body).Decode(&got)
		got.Auth = r.Header.Get("Authorization")
		w.WriteHeader(status)
	}))
	defer srv.Close()
	hook := NewWebhook(srv.URL, "secret")
	if err := hook.Send(context.Background(), "+15550001", "your code"); err != nil {
		t.Fatal(err)
	}
	if got.To != "+15550001" || got.Message != "your code" || got.Auth != "Bearer secret" {
		t.Fatalf("gateway got %+v", got)
	}
	status = http.StatusInternalServerError
	if err := hook.Send(context.Background(), "+15550001", "x"); err == nil {
		t.Fatal("a 500 from the gateway is not an error")
	}
}
