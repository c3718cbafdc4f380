package fsm

import (
	"crypto/ed25519"
	"crypto/x509"
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
