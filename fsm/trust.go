package fsm

import (
	"crypto/ed25519"
	"crypto/x509"
	"net/url"
	"slices"

	"google.golang.org/protobuf/proto"

	"github.com/covid-backend/covid-backend/command"
	"github.com/covid-backend/covid-backend/fsm/fsmpb"
)

// applyPutTrust adds a region to the trust store or updates it: flags are
// replaced, keys merged by id so that a region can rotate its key, and the
// start sequence kept unless a new one is given.
func applyPutTrust(s *state, cmd *fsmpb.Command) *fsmpb.Result {
	r := proto.CloneOf(cmd.GetPutTrust())
	switch r.GetKind() {
	case "":
	case TrustEFGSCountry:
		return putEFGSCountry(s, r)
	default:
		return putGAENSource(s, r)
	}
	if s.trusted[r.GetRegion()].GetKind() != "" {
		return refuse(command.CodeInvalidCommand, "%q is a %s origin: remove it before trusting a region of that name", r.GetRegion(), s.trusted[r.GetRegion()].GetKind())
	}
	if !idPattern(r.GetRegion()) || len(r.GetKeys()) == 0 {
		return refuse(command.CodeInvalidCommand, "a trusted region needs a name and at least one key")
	}
	ids := map[string]bool{}
	for _, k := range r.GetKeys() {
		if k.GetId() == "" || ids[k.GetId()] {
			return refuse(command.CodeInvalidCommand, "region %q: key ids must be present and distinct", r.GetRegion())
		}
		ids[k.GetId()] = true
		if _, err := parseEd25519(k.GetPublicKeyDer()); err != nil {
			return refuse(command.CodeInvalidCommand, "region %q key %q: %v", r.GetRegion(), k.GetId(), err)
		}
	}
	old := s.trusted[r.GetRegion()]
	r.Keys = mergeByID(r.GetKeys(), old.GetKeys(), (*fsmpb.TrustKey).GetId)
	if r.GetStartSeq() == 0 {
		r.StartSeq = old.GetStartSeq()
	}
	s.trusted[r.GetRegion()] = r
	return &fsmpb.Result{}
}

// applyRemoveTrust removes one key of a region, or the region with its
// kept batches: batches of a region no longer trusted are not served. The
// region's high-water mark stays, so that trusting it again does not
// take its old batches a second time.
func applyRemoveTrust(s *state, cmd *fsmpb.Command) *fsmpb.Result {
	rm := cmd.GetRemoveTrust()
	r, ok := s.trusted[rm.GetRegion()]
	if !ok {
		return refuse(command.CodeUnknownRegion, "region %q is not trusted", rm.GetRegion())
	}
	i := slices.IndexFunc(r.GetKeys(), func(k *fsmpb.TrustKey) bool { return k.GetId() == rm.GetKeyId() })
	if rm.GetKeyId() != "" && len(r.GetKeys()) > 1 {
		if i < 0 {
			return refuse(command.CodeUnknownRegion, "region %q has no key %q", rm.GetRegion(), rm.GetKeyId())
		}
		r.Keys = slices.Delete(slices.Clone(r.Keys), i, i+1)
		return &fsmpb.Result{}
	}
	if rm.GetKeyId() != "" && i < 0 {
		return refuse(command.CodeUnknownRegion, "region %q has no key %q", rm.GetRegion(), rm.GetKeyId())
	}
	delete(s.trusted, rm.GetRegion())
	delete(s.foreign, rm.GetRegion())
	return &fsmpb.Result{}
}

func parseEd25519(der []byte) (ed25519.PublicKey, error) {
	pub, err := x509.ParsePKIXPublicKey(der)
	if err != nil {
		return nil, err
	}
	ed, ok := pub.(ed25519.PublicKey)
	if !ok {
		return nil, errNotEd25519
	}
	return ed, nil
}

// Trusted returns copies of the trusted regions, sorted by name.
func (f *FSM) Trusted() []*fsmpb.TrustedRegion {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return sortedClones(f.state.trusted)
}

// IsTrusted tells whether origin is in the trust store, to serve or merge.
func (f *FSM) IsTrusted(origin string) bool {
	f.mu.RLock()
	defer f.mu.RUnlock()
	r, ok := f.state.trusted[origin]
	return ok && (r.GetServe() || r.GetMerge())
}

// Bounds of a GAEN source: its export keys (a server rotating keys holds
// two or three) and how often it is polled.
const (
	maxExportKeys     = 10
	minPollSeconds    = 10
	maxPollSeconds    = 24 * 3600
	maxSourceURLBytes = 2048
)

// putGAENSource trusts (or updates) an origin of kind "gaen-export": its
// index and export root URLs, poll interval and export keys, replaced
// whole. Its keys are merged into this region's (merge is required: the
// region's apps verify files with this region's key, so its files are
// served only as this region's).
func putGAENSource(s *state, r *fsmpb.TrustedRegion) *fsmpb.Result {
	src := r.GetGaen()
	switch old := s.trusted[r.GetRegion()]; {
	case r.GetKind() != TrustGAENExport:
		return refuse(command.CodeInvalidCommand, "a trusted origin is of kind %q, %q or a region of this project, not %q", TrustGAENExport, TrustEFGSCountry, r.GetKind())
	case !idPattern(r.GetRegion()):
		return refuse(command.CodeInvalidCommand, "a GAEN source needs a name")
	case old != nil && old.GetKind() != r.GetKind():
		return refuse(command.CodeInvalidCommand, "%q is trusted as another kind of origin: remove it before adding a GAEN source of that name", r.GetRegion())
	case !r.GetMerge() || r.GetServe() || len(r.GetKeys()) > 0 || r.GetStartSeq() != 0:
		return refuse(command.CodeInvalidCommand, "GAEN source %q: its keys are merged into this region's files (merge, not serve), and it has export keys, not region keys", r.GetRegion())
	case !httpURL(src.GetIndexUrl()) || !httpURL(src.GetExportRoot()):
		return refuse(command.CodeInvalidCommand, "GAEN source %q: the index and export root are http(s) URLs of at most %d bytes, without credentials or a query", r.GetRegion(), maxSourceURLBytes)
	case src.GetPollSeconds() < minPollSeconds || src.GetPollSeconds() > maxPollSeconds:
		return refuse(command.CodeInvalidCommand, "GAEN source %q: poll every %d to %d seconds", r.GetRegion(), minPollSeconds, maxPollSeconds)
	case len(src.GetKeys()) == 0 || len(src.GetKeys()) > maxExportKeys:
		return refuse(command.CodeInvalidCommand, "GAEN source %q: 1 to %d export keys", r.GetRegion(), maxExportKeys)
	}
	seen := map[[2]string]bool{}
	for _, k := range src.GetKeys() {
		id := [2]string{k.GetKeyId(), k.GetKeyVersion()}
		if k.GetKeyId() == "" || seen[id] {
			return refuse(command.CodeInvalidCommand, "GAEN source %q: export keys need distinct ids and versions", r.GetRegion())
		}
		seen[id] = true
		if pub, err := parseExportKey(k.GetPublicKeyDer()); err != nil || pub.Curve.Params().Name != "P-256" {
			return refuse(command.CodeInvalidCommand, "GAEN source %q key %q: not a P-256 public key", r.GetRegion(), k.GetKeyId())
		}
	}
	s.trusted[r.GetRegion()] = r
	return &fsmpb.Result{}
}

// httpURL tells whether s is an http(s) URL a source may name: a host,
// no credentials, no query or fragment (the admin view shows it).
func httpURL(s string) bool {
	u, err := url.Parse(s)
	return err == nil && len(s) <= maxSourceURLBytes && (u.Scheme == "https" || u.Scheme == "http") && u.Host != "" &&
		u.User == nil && u.RawQuery == "" && u.Fragment == "" && !u.ForceQuery
}
