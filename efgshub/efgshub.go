// Package efgshub is the stand-in EU gateway a region serves on its own
// listener (--hub-addr): EFGS's upload, download and audit, with its
// status codes and content types, on the region's replicated state
// (fsm/hub.go), so that countries exchange keys through a hub that
// survives losing nodes as any region does. A caller is the country whose
// authentication certificate it showed in the TLS handshake, never what a
// header says (EFGS read X-SSL-Client-* headers set by its proxy).
package efgshub

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/covid-backend/covid-backend/command"
	"github.com/covid-backend/covid-backend/efgs"
	"github.com/covid-backend/covid-backend/efgs/efgspb"
	"github.com/covid-backend/covid-backend/fsm/fsmpb"
)

// maxUpload bounds an upload's body: 5,000 keys are about 250 KB.
const maxUpload = 1 << 20

// State is what the hub reads of the region's state; *fsm.FSM implements
// it.
type State interface {
	HubCountryOf(authThumbprint string) (string, bool)
	HubSigner(thumbprint string) (string, *fsmpb.HubSigner, bool)
	HubBatch(dayUnix int64, tag string) (*fsmpb.HubBatch, string, bool)
	HubCountries() []*fsmpb.HubCountry
}

// Hub answers the gateway's API under /efgs.
type Hub struct {
	State   State
	Applier command.Applier
	Now     func() time.Time
	Logger  *slog.Logger
	// Key, when set, signs every download batch (efgs.SignHubBatch).
	Key ed25519.PrivateKey
	// PrivateCallbacks lets callbacks name private addresses (a hub and
	// its countries on one private network, or a test).
	PrivateCallbacks bool
}

// ServeHTTP identifies the caller's country and routes its request.
func (h *Hub) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.TLS == nil || len(r.TLS.PeerCertificates) == 0 {
		answer(w, http.StatusForbidden, "a client certificate is required")
		return
	}
	country, ok := h.State.HubCountryOf(efgs.Thumbprint(r.TLS.PeerCertificates[0]))
	if !ok {
		answer(w, http.StatusForbidden, "the client certificate is not a country's")
		return
	}
	switch path := strings.TrimPrefix(r.URL.Path, "/efgs/diagnosiskeys/"); {
	case r.Method == http.MethodPost && path == "upload":
		h.upload(w, r, country)
	case r.Method == http.MethodGet && strings.HasPrefix(path, "download/"):
		h.download(w, r, country, strings.TrimPrefix(path, "download/"))
	case path == "callback" && r.Method == http.MethodGet:
		h.listCallbacks(w, country)
	case strings.HasPrefix(path, "callback/") && (r.Method == http.MethodPut || r.Method == http.MethodDelete):
		h.putCallback(w, r, country, strings.TrimPrefix(path, "callback/"))
	case r.Method == http.MethodGet && strings.HasPrefix(path, "audit/download/"):
		date, tag, _ := strings.Cut(strings.TrimPrefix(path, "audit/download/"), "/")
		h.audit(w, date, tag)
	default:
		answer(w, http.StatusNotFound, "no such route")
	}
}

func (h *Hub) upload(w http.ResponseWriter, r *http.Request, country string) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxUpload))
	if err != nil {
		answer(w, http.StatusRequestEntityTooLarge, "the body is larger than the gateway takes")
		return
	}
	signers := func(tp string) (string, bool) { c, _, ok := h.State.HubSigner(tp); return c, ok }
	up, ref := efgs.CheckUpload(country, r.Header.Get("Content-Type"), r.Header.Get("batchTag"), r.Header.Get("batchSignature"), body, signers, h.Now())
	if ref != nil {
		answer(w, ref.Status, ref.Message)
		return
	}
	u := &fsmpb.HubUpload{Country: country, Tag: up.Tag, BatchSignature: r.Header.Get("batchSignature"), SignerThumbprint: up.Signer}
	for _, k := range up.Keys {
		enc, err := proto.MarshalOptions{Deterministic: true}.Marshal(k)
		if err != nil {
			answer(w, http.StatusBadRequest, "a key does not encode")
			return
		}
		u.Keys, u.KeyData = append(u.Keys, enc), append(u.KeyData, k.GetKeyData())
	}
	res, err := command.HubUpload(r.Context(), h.Applier, u)
	switch {
	case err != nil:
		h.failed(w, err)
	case res.GetStatus() == http.StatusCreated:
		w.WriteHeader(http.StatusCreated)
	case res.GetStatus() == http.StatusConflict:
		answer(w, http.StatusConflict, "batchTag already used")
	case res.GetStatus() == http.StatusTooManyRequests:
		answer(w, http.StatusTooManyRequests, "the country's keys of the day are at the gateway's bound; upload tomorrow")
	default:
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusMultiStatus)
		json.NewEncoder(w).Encode(map[string][]uint32{"201": orEmpty(res.GetCreated()), "409": orEmpty(res.GetConflicting()), "500": {}})
	}
}

func orEmpty(v []uint32) []uint32 {
	if v == nil {
		return []uint32{}
	}
	return v
}

// failed answers a write that did not go through: 503 to retry (no
// leader, a leader change), else 500; a refusal of the state machine 400.
func (h *Hub) failed(w http.ResponseWriter, err error) {
	var refused *command.Error
	if errors.As(err, &refused) {
		answer(w, http.StatusBadRequest, refused.Message)
		return
	}
	if errors.Is(err, context.Canceled) {
		return
	}
	h.Logger.Warn("hub: upload not stored", "err", err)
	answer(w, http.StatusServiceUnavailable, "the gateway could not store the upload now; retry")
}

// batch finds a download batch by its date (yyyy-MM-dd) and tag.
func (h *Hub) batch(date, tag string) (*fsmpb.HubBatch, string, bool) {
	day, err := time.Parse(time.DateOnly, date)
	if err != nil {
		return nil, "", false
	}
	return h.State.HubBatch(day.Unix(), tag)
}

func (h *Hub) download(w http.ResponseWriter, r *http.Request, country, date string) {
	format, ref := efgs.ParseAccept(r.Header.Get("Accept"))
	if ref != nil {
		answer(w, ref.Status, ref.Message)
		return
	}
	if h.tooOld(w, date) {
		return
	}
	b, next, ok := h.batch(date, r.Header.Get("batchTag"))
	if !ok {
		answer(w, http.StatusNotFound, "no batch")
		return
	}
	var body []byte // a DiagnosisKeyBatch: each key as field 1
	if b.GetCountry() != country {
		for _, k := range b.GetKeys() {
			body = protowire.AppendTag(body, 1, protowire.BytesType)
			body = protowire.AppendBytes(body, k)
		}
	}
	if format == efgs.JSON {
		batch := &efgspb.DiagnosisKeyBatch{}
		var err error
		if err = proto.Unmarshal(body, batch); err == nil {
			body, err = efgs.EncodeBatch(efgs.JSON, batch)
		}
		if err != nil {
			answer(w, http.StatusInternalServerError, "the batch does not encode")
			return
		}
	}
	if next == "" {
		next = "null"
	}
	w.Header().Set("Content-Type", efgs.ContentTypeOf(format))
	if format == efgs.Protobuf {
		w.Header().Set("X-Protobuf-Schema", "Efgs.proto")
		w.Header().Set("X-Protobuf-Message", "eu.interop.DiagnosisKeyBatch")
	}
	w.Header().Set("batchTag", b.GetTag())
	w.Header().Set("nextBatchTag", next)
	if h.Key != nil {
		w.Header().Set(efgs.HubSignatureHeader, efgs.SignHubBatch(h.Key, date, r.Header.Get("batchTag"), country, b.GetTag(), next, body))
	}
	w.Write(body)
}

// maxAgeDays is how far back downloads and audits answer (EFGS: 410
// before it).
const maxAgeDays = 14

// tooOld answers 410 for a date before the gateway's window, as EFGS did,
// and 400 for one that is no date.
func (h *Hub) tooOld(w http.ResponseWriter, date string) bool {
	day, err := time.Parse(time.DateOnly, date)
	switch {
	case err != nil:
		answer(w, http.StatusBadRequest, "the date is not yyyy-MM-dd")
		return true
	case day.Before(h.Now().UTC().Truncate(24*time.Hour).AddDate(0, 0, -maxAgeDays)):
		answer(w, http.StatusGone, "the date is before the gateway keeps batches")
		return true
	}
	return false
}

func (h *Hub) audit(w http.ResponseWriter, date, tag string) {
	if h.tooOld(w, date) {
		return
	}
	b, _, ok := h.batch(date, tag)
	if !ok || tag == "" {
		answer(w, http.StatusNotFound, "no batch")
		return
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode([]efgs.AuditEntry{{Country: b.GetCountry(), UploadedTime: time.Unix(b.GetUploadedUnix(), 0).UTC().Format(time.RFC3339),
		SigningCertificate: b.GetSignerPem(), UploaderSigningThumbprint: b.GetSignerThumbprint(), SigningCertificateOperatorSignature: b.GetAnchorSignature(),
		Amount: len(b.GetKeys()), BatchSignature: b.GetBatchSignature()}})
}

func answer(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]string{"message": msg})
}

func (h *Hub) listCallbacks(w http.ResponseWriter, country string) {
	out := []map[string]string{}
	for _, c := range h.State.HubCountries() {
		if c.GetCountry() != country {
			continue
		}
		for _, cb := range c.GetCallbacks() {
			out = append(out, map[string]string{"callbackId": cb.GetId(), "url": cb.GetUrl()})
		}
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(out)
}

// putCallback is PUT (with ?url=) or DELETE of a country's callback.
func (h *Hub) putCallback(w http.ResponseWriter, r *http.Request, country, id string) {
	cb := &fsmpb.HubCallback{Country: country, Id: id, Url: r.URL.Query().Get("url"), Remove: r.Method == http.MethodDelete}
	if !cb.GetRemove() {
		if err := CheckCallbackURL(r.Context(), cb.GetUrl(), h.PrivateCallbacks); err != nil {
			answer(w, http.StatusBadRequest, err.Error())
			return
		}
	}
	err := command.PutHubCallback(r.Context(), h.Applier, cb)
	var refused *command.Error
	switch {
	case errors.As(err, &refused) && cb.GetRemove() && refused.Code == command.CodeUnknownRegion:
		answer(w, http.StatusNotFound, refused.Message)
	case err != nil:
		h.failed(w, err)
	default:
		w.WriteHeader(http.StatusOK)
	}
}
