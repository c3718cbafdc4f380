package fsm

import (
	"encoding/hex"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/covid-backend/covid-backend/command"
	"github.com/covid-backend/covid-backend/fsm/fsmpb"
)

// Bounds of the stand-in gateway (hub): an upload holds at most
// MaxHubUploadKeys keys (EFGS: 5,000), a country a few certificates, the
// hub a few dozen countries.
const (
	MaxHubUploadKeys = 5000
	// MaxHubKeysPerCountryDay bounds what one country stores in a UTC day
	// (a country's credentials stolen, or its backend gone wrong): more
	// than any country uploaded in a day of 2021.
	MaxHubKeysPerCountryDay = 200_000
	maxHubCountries         = 100
	maxHubCerts             = 10
	maxHubPEM               = 16 << 10
	maxHubTag               = 64
)

// hub is the replicated state of a stand-in gateway, with an index of the
// keys it holds (by key data), rebuilt from the batches.
type hub struct {
	countries map[string]*fsmpb.HubCountry
	batches   []*fsmpb.HubBatch
	keys      map[TEK]bool
}

func (s *state) hubState() *hub {
	if s.hub == nil {
		s.hub = &hub{countries: map[string]*fsmpb.HubCountry{}, keys: map[TEK]bool{}}
	}
	return s.hub
}

// applyPutHubCountry registers (or replaces, or removes) a country of the
// hub: the thumbprints of its authentication certificates and its signing
// certificates with the trust anchor's signatures (from version 7). A
// certificate names one country only. A removed country uploads and
// downloads no more; its download batches stay until they age out.
func applyPutHubCountry(s *state, cmd *fsmpb.Command) *fsmpb.Result {
	c := proto.CloneOf(cmd.GetPutHubCountry())
	code := c.GetCountry()
	if c.GetRemove() {
		if s.hub.countryOrNil(code) == nil {
			return refuse(command.CodeUnknownRegion, "%q is not a country of the hub", code)
		}
		delete(s.hub.countries, code) // its batches stay until they age out
		return &fsmpb.Result{}
	}
	switch {
	case len(code) != 2 || strings.ToUpper(code) != code || !idPattern(code):
		return refuse(command.CodeInvalidCommand, "a hub country is named by its two capital letters, not %q", code)
	case len(c.GetAuthThumbprints()) == 0 || len(c.GetAuthThumbprints()) > maxHubCerts || len(c.GetSigners()) == 0 || len(c.GetSigners()) > maxHubCerts:
		return refuse(command.CodeInvalidCommand, "hub country %s: 1 to %d authentication and signing certificates", code, maxHubCerts)
	case s.hub != nil && s.hub.countries[code] == nil && len(s.hub.countries) >= maxHubCountries:
		return refuse(command.CodeInvalidCommand, "the hub serves at most %d countries", maxHubCountries)
	}
	for _, tp := range append(slices.Clone(c.GetAuthThumbprints()), signerThumbprints(c)...) {
		if !thumbprint(tp) {
			return refuse(command.CodeInvalidCommand, "hub country %s: a thumbprint is 64 lowercase hex digits, not %q", code, tp)
		}
		if other, ok := s.hubCountryOf(tp); ok && other != code {
			return refuse(command.CodeInvalidCommand, "hub country %s: certificate %s is %s's", code, tp, other)
		}
	}
	for _, sg := range c.GetSigners() {
		if sg.GetPem() == "" || len(sg.GetPem()) > maxHubPEM || sg.GetAnchorSignature() == "" || len(sg.GetAnchorSignature()) > 4096 {
			return refuse(command.CodeInvalidCommand, "hub country %s: a signing certificate needs its PEM and the trust anchor's signature", code)
		}
	}
	if old := s.hub.countryOrNil(code); old != nil {
		c.Callbacks = old.GetCallbacks()
	} else {
		c.Callbacks = nil
	}
	s.hubState().countries[code] = c
	return &fsmpb.Result{}
}

// maxHubCallbacks bounds a country's callbacks (EFGS: no bound).
const maxHubCallbacks = 10

// applyPutHubCallback adds, replaces or removes a country's callback
// (from version 7). The URL was checked by the node that took the request
// (https, no query, a public address); removing one that does not exist
// is refused, as EFGS answers 404.
func applyPutHubCallback(s *state, cmd *fsmpb.Command) *fsmpb.Result {
	cb := proto.CloneOf(cmd.GetPutHubCallback())
	c := s.hub.countryOrNil(cb.GetCountry())
	switch {
	case c == nil:
		return refuse(command.CodeInvalidCommand, "%q is not a country of the hub", cb.GetCountry())
	case cb.GetId() == "" || len(cb.GetId()) > maxHubTag || !ValidImportName(cb.GetId()):
		return refuse(command.CodeInvalidCommand, "a callback id of 1 to %d printable characters", maxHubTag)
	case !cb.GetRemove() && (!strings.HasPrefix(cb.GetUrl(), "https://") || len(cb.GetUrl()) > maxSourceURLBytes):
		return refuse(command.CodeInvalidCommand, "a callback URL is https, at most %d bytes", maxSourceURLBytes)
	}
	i := slices.IndexFunc(c.GetCallbacks(), func(x *fsmpb.HubCallback) bool { return x.GetId() == cb.GetId() })
	switch {
	case cb.GetRemove() && i < 0:
		return refuse(command.CodeUnknownRegion, "%s has no callback %q", cb.GetCountry(), cb.GetId())
	case cb.GetRemove() && cb.GetUrl() != "" && c.GetCallbacks()[i].GetUrl() != cb.GetUrl():
		return &fsmpb.Result{} // registered anew since: kept
	case cb.GetRemove():
		c.Callbacks = slices.Delete(slices.Clone(c.Callbacks), i, i+1)
	case i >= 0:
		c.Callbacks = slices.Clone(c.Callbacks)
		c.Callbacks[i] = cb
	case len(c.GetCallbacks()) >= maxHubCallbacks:
		return refuse(command.CodeInvalidCommand, "a country has at most %d callbacks", maxHubCallbacks)
	default:
		c.Callbacks = append(slices.Clone(c.Callbacks), cb)
	}
	return &fsmpb.Result{}
}

func signerThumbprints(c *fsmpb.HubCountry) []string {
	out := make([]string, len(c.GetSigners()))
	for i, sg := range c.GetSigners() {
		out[i] = sg.GetThumbprint()
	}
	return out
}

func thumbprint(s string) bool {
	b, err := hex.DecodeString(s)
	return err == nil && len(b) == 32 && strings.ToLower(s) == s
}

// hubCountryOf is the country an authentication or signing certificate
// (by thumbprint) belongs to.
func (s *state) hubCountryOf(tp string) (string, bool) {
	if s.hub == nil {
		return "", false
	}
	for code, c := range s.hub.countries {
		if slices.Contains(c.GetAuthThumbprints(), tp) || slices.Contains(signerThumbprints(c), tp) {
			return code, true
		}
	}
	return "", false
}

// applyHubUpload stores a country's upload as a download batch of its
// own, tagged yyyyMMdd-N by the command's UTC day, as the gateway does
// (from version 7). An upload tag the country used before is 409; an
// upload holding a key the hub holds (under any tag, while it is kept) is
// 207 and nothing is stored, where EFGS stored replays; past the
// country's keys of the day, 429.
func applyHubUpload(s *state, cmd *fsmpb.Command) *fsmpb.Result {
	u := cmd.GetHubUpload()
	c := s.hub.countryOrNil(u.GetCountry())
	switch n := len(u.GetKeys()); {
	case c == nil:
		return refuse(command.CodeInvalidCommand, "%q is not a country of the hub", u.GetCountry())
	case !slices.Contains(signerThumbprints(c), u.GetSignerThumbprint()):
		return refuse(command.CodeInvalidCommand, "the upload's signing certificate is not %s's", u.GetCountry())
	case u.GetTag() == "" || len(u.GetTag()) > maxHubTag || n == 0 || n > MaxHubUploadKeys || n != len(u.GetKeyData()):
		return refuse(command.CodeInvalidCommand, "an upload has a tag of 1 to %d characters and 1 to %d keys", maxHubTag, MaxHubUploadKeys)
	case slices.ContainsFunc(u.GetKeyData(), func(k []byte) bool { return len(k) != KeyLen }):
		return refuse(command.CodeInvalidCommand, "a key is %d bytes", KeyLen)
	}
	h := s.hubState()
	if slices.ContainsFunc(h.batches, func(b *fsmpb.HubBatch) bool {
		return b.GetCountry() == u.GetCountry() && b.GetUploadTag() == u.GetTag()
	}) {
		return hubResult(&fsmpb.HubUploadResult{Status: 409})
	}
	res := &fsmpb.HubUploadResult{}
	seen := map[TEK]bool{}
	for i, k := range u.GetKeyData() {
		if h.keys[TEK(k)] || seen[TEK(k)] {
			res.Conflicting = append(res.Conflicting, uint32(i))
		} else {
			res.Created = append(res.Created, uint32(i))
		}
		seen[TEK(k)] = true
	}
	if len(res.Conflicting) > 0 {
		res.Status = 207
		return hubResult(res)
	}
	day := cmd.GetTimeUnix() - cmd.GetTimeUnix()%dayUnix
	if h.keysOfDay(u.GetCountry(), day)+len(u.GetKeys()) > MaxHubKeysPerCountryDay {
		return hubResult(&fsmpb.HubUploadResult{Status: 429})
	}
	signer := c.GetSigners()[slices.IndexFunc(c.GetSigners(), func(sg *fsmpb.HubSigner) bool { return sg.GetThumbprint() == u.GetSignerThumbprint() })]
	n := 1 + len(slices.DeleteFunc(slices.Clone(h.batches), func(b *fsmpb.HubBatch) bool { return b.GetDayUnix() != day }))
	tag := fmt.Sprintf("%s-%d", time.Unix(day, 0).UTC().Format("20060102"), n)
	h.batches = append(h.batches, &fsmpb.HubBatch{Tag: tag, DayUnix: day, Country: u.GetCountry(), UploadTag: u.GetTag(),
		BatchSignature: u.GetBatchSignature(), SignerThumbprint: u.GetSignerThumbprint(), UploadedUnix: cmd.GetTimeUnix(),
		Keys: u.GetKeys(), KeyData: u.GetKeyData(), SignerPem: signer.GetPem(), AnchorSignature: signer.GetAnchorSignature()})
	for k := range seen {
		h.keys[k] = true
	}
	return hubResult(&fsmpb.HubUploadResult{Status: 201, Tag: tag})
}

// keysOfDay counts a country's keys in the batches of a day.
func (h *hub) keysOfDay(country string, day int64) int {
	n := 0
	for _, b := range h.batches {
		if b.GetCountry() == country && b.GetDayUnix() == day {
			n += len(b.GetKeyData())
		}
	}
	return n
}

func hubResult(r *fsmpb.HubUploadResult) *fsmpb.Result {
	return &fsmpb.Result{Value: &fsmpb.Result_HubUpload{HubUpload: r}}
}

func (h *hub) countryOrNil(code string) *fsmpb.HubCountry {
	if h == nil {
		return nil
	}
	return h.countries[code]
}

// expireHub drops the download batches of days before cutoff's, and
// their keys.
func (s *state) expireHub(cutoff int64) {
	if s.hub == nil {
		return
	}
	s.hub.batches = slices.DeleteFunc(s.hub.batches, func(b *fsmpb.HubBatch) bool { return b.GetDayUnix()+dayUnix <= cutoff })
	s.hub.reindex()
}

func (h *hub) reindex() {
	h.keys = map[TEK]bool{}
	for _, b := range h.batches {
		for _, k := range b.GetKeyData() {
			h.keys[TEK(k)] = true
		}
	}
}

// HubCountryOf tells the country of the hub whose authentication
// certificate has this thumbprint.
func (f *FSM) HubCountryOf(authThumbprint string) (string, bool) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	if f.state.hub == nil {
		return "", false
	}
	for code, c := range f.state.hub.countries {
		if slices.Contains(c.GetAuthThumbprints(), authThumbprint) {
			return code, true
		}
	}
	return "", false
}

// HubSigner returns the country and the registered signing certificate of
// this thumbprint.
func (f *FSM) HubSigner(tp string) (country string, signer *fsmpb.HubSigner, ok bool) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	if f.state.hub == nil {
		return "", nil, false
	}
	for code, c := range f.state.hub.countries {
		for _, sg := range c.GetSigners() {
			if sg.GetThumbprint() == tp {
				return code, proto.CloneOf(sg), true
			}
		}
	}
	return "", nil, false
}

// HubBatch returns a download batch of a day by tag ("": the day's first)
// and the tag after it ("" at the end of the chain).
func (f *FSM) HubBatch(dayUnix int64, tag string) (b *fsmpb.HubBatch, next string, ok bool) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	if f.state.hub == nil {
		return nil, "", false
	}
	bs := f.state.hub.batches
	i := slices.IndexFunc(bs, func(b *fsmpb.HubBatch) bool { return b.GetDayUnix() == dayUnix && (tag == "" || b.GetTag() == tag) })
	if i < 0 {
		return nil, "", false
	}
	if i+1 < len(bs) {
		next = bs[i+1].GetTag()
	}
	return bs[i], next, true
}

// HubBatches returns the hub's download batches, oldest first (shared
// read-only messages).
func (f *FSM) HubBatches() []*fsmpb.HubBatch {
	f.mu.RLock()
	defer f.mu.RUnlock()
	if f.state.hub == nil {
		return nil
	}
	return slices.Clone(f.state.hub.batches)
}

// HubCountries returns copies of the hub's countries, by code.
func (f *FSM) HubCountries() []*fsmpb.HubCountry {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return f.state.hub.sortedCountries()
}

func (h *hub) sortedCountries() []*fsmpb.HubCountry {
	if h == nil {
		return nil
	}
	out := make([]*fsmpb.HubCountry, 0, len(h.countries))
	for _, code := range slices.Sorted(maps.Keys(h.countries)) {
		out = append(out, proto.CloneOf(h.countries[code]))
	}
	return out
}

func captureHub(s *state, hdr *fsmpb.SnapshotHeader) persist {
	if s.hub == nil {
		return nil
	}
	st := &fsmpb.HubState{Countries: s.hub.sortedCountries(), Batches: slices.Clone(s.hub.batches)}
	hdr.Hub = true
	return func(put func(proto.Message) error) error { return put(st) }
}

func restoreHub(s *state, hdr *fsmpb.SnapshotHeader, r *snapshotReader) error {
	if !hdr.GetHub() {
		return nil
	}
	st := &fsmpb.HubState{}
	if err := r.get(st); err != nil {
		return fmt.Errorf("read hub: %w", err)
	}
	h := s.hubState()
	for _, c := range st.GetCountries() {
		h.countries[c.GetCountry()] = c
	}
	h.batches = st.GetBatches()
	h.reindex()
	return nil
}
