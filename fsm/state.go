package fsm

import (
	"bytes"
	"slices"
	"unique"

	"google.golang.org/protobuf/proto"

	"github.com/covid-backend/covid-backend/fsm/fsmpb"
)

// KeyLen is the length of a temporary exposure key.
const KeyLen = 16

// TEK is the raw 16 bytes of a temporary exposure key.
type TEK [KeyLen]byte

// Key is a stored temporary exposure key with the fields exports carry.
type Key struct {
	Data              TEK
	RollingStart      int32
	RollingPeriod     int32
	TransmissionRisk  int32
	ReportType        int32
	DaysSinceOnset    int32
	HasDaysSinceOnset bool
	// Submission is the index of the submission that brought the key.
	Submission uint32
	// Batch is the sequence number of the batch that published the key, 0
	// while the key waits for sealing.
	Batch uint32
	// Revoked is set once the key has been withdrawn.
	Revoked bool
	// Revised is set once the key's report type was revised by its uploader.
	Revised bool
}

// keyRecord is the in-memory form of a key without its bytes (the key
// table keeps those beside it): 20 bytes, so a million keys cost tens of
// megabytes.
type keyRecord struct {
	start      int32
	submission uint32
	batch      uint32
	revoked    bool
	revised    bool
	period     uint8
	risk       uint8
	report     uint8
	onset      int8
	hasOnset   bool
}

// Submission is one accepted upload and what authorized it.
type Submission struct {
	// Index is the submission's number, which key records refer to.
	Index             uint32
	ID                [16]byte
	TimeUnix          int64
	AppID             string
	Issuer            string
	CertificateDigest []byte
	Traveler          bool
	KeyCount          uint32
	// Provider and CodeHash record what authorized a code upload.
	Provider string
	CodeHash []byte
}

// intern returns s from one copy per distinct value: a region has a few
// app ids, health authorities and providers, and each of its submissions
// names them (a million keys come in some 70,000 submissions).
func intern(s string) string { return unique.Make(s).Value() }

// state is the whole replicated state. Only Apply and Restore change it.
type state struct {
	keys           *keyTable
	submissions    map[uint32]*Submission
	nextSubmission uint32
	submissionIdx  map[[16]byte]uint32
	// live counts each submission's keys still in the key set; at zero the
	// submission expires with them.
	live        map[uint32]uint32
	authorities map[string]*fsmpb.Authority
	nodes       map[string]*fsmpb.Node
	providers   map[string]*fsmpb.Provider
	codes       map[uint32]*fsmpb.Code
	trusted     map[string]*fsmpb.TrustedRegion
	// foreign keeps other regions' batches as received, by origin, in
	// sequence order.
	foreign map[string][]*fsmpb.ForeignBatch
	// marks are the newest batch ever kept per origin (high-water marks),
	// kept after the batches expire and after the origin's trust goes.
	marks map[string]*fsmpb.OriginMark
	// apiKeys are the verification service's keys by hash; vcodes its
	// codes by uuid, found from a code's keyed hash through vcodeHash;
	// tokens the tokens /api/verify handed out, by id.
	apiKeys   map[[32]byte]*fsmpb.ApiKey
	vcodes    map[string]*fsmpb.VerificationCode
	vcodeHash map[[32]byte]string
	tokens    map[string]*fsmpb.VerificationToken
	// users are the portal's accounts by email; audit is its audit log,
	// oldest first.
	users map[string]*fsmpb.User
	audit []*fsmpb.AuditEvent
	// revokedCerts are the member certificates the region no longer
	// takes, by SHA-256.
	revokedCerts map[[32]byte]*fsmpb.RevokedCert
	// imported are the GAEN export files imported, by origin and name.
	imported map[string]map[string]*fsmpb.ImportedFile
	// efgs is the progress with the EU gateway (nil: none).
	efgs *fsmpb.EFGSState
	// hub is the stand-in gateway this region serves (nil: none).
	hub *hub
	// appConfigs are the app configuration's versions, oldest first.
	appConfigs []*fsmpb.AppConfig
	// service is the region's end of service (nil: none scheduled).
	service *fsmpb.Service
	// lastDigest chains this region's own batches.
	lastDigest []byte
	// pending lists, in arrival order, the keys not yet sealed.
	pending []TEK
	// revisedPending are published keys revoked since the last batch.
	revisedPending []TEK
	// revocations records every revocation with its reason.
	revocations []*fsmpb.Revocation
	// batches are the sealed batches, oldest first.
	batches []*Batch
	// lastSeq and lastSealUnix survive the removal of old batches, so
	// that batch numbers are never reused.
	lastSeq      uint32
	lastSealUnix int64
	// lastTime is the highest time of a command of version 2 or later that
	// changed the state (see changed and stamp); version 1 commands leave
	// it, so that it is the same whether a node replayed them or restored
	// a snapshot written before it existed.
	lastTime int64
	// policy is the region policy operators set (nil: defaults).
	policy *fsmpb.Policy
	// sessions are the recent writes' results by request id (session.go).
	sessions *sessions
}

// stamp gives a command of version 2 or later the time it is applied at:
// its leader's stamp, but never earlier than a command applied before, so
// that a new leader whose clock is behind cannot move the region's time
// back (unpublish a sealed window, revive an expired code). Version 1
// commands keep their stamp, as the builds that wrote them applied them.
// Apply records the time of each such command that changed the state.
func (s *state) stamp(cmd *fsmpb.Command) {
	if cmd.GetVersion() >= 2 && cmd.GetTimeUnix() < s.lastTime {
		cmd.TimeUnix = s.lastTime
	}
}

func newState() *state {
	return &state{
		keys:          newKeyTable(0),
		submissions:   make(map[uint32]*Submission),
		live:          make(map[uint32]uint32),
		submissionIdx: make(map[[16]byte]uint32),
		authorities:   make(map[string]*fsmpb.Authority),
		providers:     make(map[string]*fsmpb.Provider),
		trusted:       make(map[string]*fsmpb.TrustedRegion),
		foreign:       make(map[string][]*fsmpb.ForeignBatch),
		marks:         make(map[string]*fsmpb.OriginMark),
		imported:      make(map[string]map[string]*fsmpb.ImportedFile),
		apiKeys:       make(map[[32]byte]*fsmpb.ApiKey),
		vcodes:        make(map[string]*fsmpb.VerificationCode),
		vcodeHash:     make(map[[32]byte]string),
		tokens:        make(map[string]*fsmpb.VerificationToken),
		users:         make(map[string]*fsmpb.User),
		codes:         make(map[uint32]*fsmpb.Code),
		nodes:         make(map[string]*fsmpb.Node),
		sessions:      newSessions(),
		revokedCerts:  make(map[[32]byte]*fsmpb.RevokedCert),
	}
}

func (r keyRecord) key(data TEK) Key {
	return Key{
		Data: data, RollingStart: r.start, RollingPeriod: int32(r.period),
		TransmissionRisk: int32(r.risk), ReportType: int32(r.report),
		DaysSinceOnset: int32(r.onset), HasDaysSinceOnset: r.hasOnset,
		Submission: r.submission, Batch: r.batch, Revoked: r.revoked, Revised: r.revised,
	}
}

func (k Key) record() keyRecord {
	return keyRecord{
		start: k.RollingStart, submission: k.Submission, period: uint8(k.RollingPeriod),
		risk: uint8(k.TransmissionRisk), report: uint8(k.ReportType),
		onset: int8(k.DaysSinceOnset), hasOnset: k.HasDaysSinceOnset, batch: k.Batch, revoked: k.Revoked,
		revised: k.Revised,
	}
}

// NumKeys returns how many keys the state holds.
func (f *FSM) NumKeys() int {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return f.state.keys.len()
}

// HasKey reports whether the key is stored.
func (f *FSM) HasKey(k TEK) bool {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return f.state.keys.has(k)
}

// Keys returns every stored key accepted by keep, sorted by key bytes.
func (f *FSM) Keys(keep func(Key) bool) []Key {
	f.mu.RLock()
	out := make([]Key, 0, f.state.keys.len())
	for data, r := range f.state.keys.all() {
		if k := r.key(data); keep == nil || keep(k) {
			out = append(out, k)
		}
	}
	f.mu.RUnlock()
	slices.SortFunc(out, func(a, b Key) int { return bytes.Compare(a.Data[:], b.Data[:]) })
	return out
}

// Submission returns the submission with the given index.
func (f *FSM) Submission(i uint32) (Submission, bool) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	sub, ok := f.state.submissions[i]
	if !ok {
		return Submission{}, false
	}
	return *sub, true
}

// SubmissionByID returns the submission with the given id.
func (f *FSM) SubmissionByID(id [16]byte) (Submission, bool) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	i, ok := f.state.submissionIdx[id]
	if !ok {
		return Submission{}, false
	}
	return *f.state.submissions[i], true
}

// Authority returns a copy of the health authority with the given issuer.
func (f *FSM) Authority(issuer string) (*fsmpb.Authority, bool) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	a, ok := f.state.authorities[issuer]
	if !ok {
		return nil, false
	}
	return proto.CloneOf(a), true
}

// Authorities returns copies of all health authorities, sorted by issuer.
func (f *FSM) Authorities() []*fsmpb.Authority {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return sortedClones(f.state.authorities)
}

// Node returns the recorded addresses of a member.
func (f *FSM) Node(id string) (*fsmpb.Node, bool) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	n, ok := f.state.nodes[id]
	if !ok {
		return nil, false
	}
	return proto.CloneOf(n), true
}

// Nodes returns the recorded addresses of all members, sorted by id.
func (f *FSM) Nodes() []*fsmpb.Node {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return sortedClones(f.state.nodes)
}

func sortedClones[M proto.Message](m map[string]M) []M {
	names := make([]string, 0, len(m))
	for name := range m {
		names = append(names, name)
	}
	slices.Sort(names)
	out := make([]M, len(names))
	for i, name := range names {
		out[i] = proto.CloneOf(m[name])
	}
	return out
}

// AppKnown reports whether any health authority lists the app id.
func (f *FSM) AppKnown(appID string) bool {
	f.mu.RLock()
	defer f.mu.RUnlock()
	for _, a := range f.state.authorities {
		if slices.Contains(a.GetAppIds(), appID) {
			return true
		}
	}
	return false
}

// Submissions returns every kept submission, sorted by index.
func (f *FSM) Submissions() []Submission {
	f.mu.RLock()
	out := make([]Submission, 0, len(f.state.submissions))
	for _, sub := range f.state.submissions {
		out = append(out, *sub)
	}
	f.mu.RUnlock()
	slices.SortFunc(out, func(a, b Submission) int { return int(a.Index) - int(b.Index) })
	return out
}

// idPattern accepts ids of providers: letters, digits, '.', '_', '-'.
func idPattern(s string) bool {
	if len(s) == 0 || len(s) > 63 {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-') {
			return false
		}
	}
	return true
}
