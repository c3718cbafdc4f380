package api

import (
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"strconv"
	"strings"
	"sync"

	"github.com/gin-gonic/gin"

	"github.com/covid-backend/covid-backend/command"
	"github.com/covid-backend/covid-backend/efgs"
	"github.com/covid-backend/covid-backend/export"
	"github.com/covid-backend/covid-backend/federation"
	"github.com/covid-backend/covid-backend/feed"
	"github.com/covid-backend/covid-backend/fsm"
	"github.com/covid-backend/covid-backend/fsm/fsmpb"
)

// maxBatchBytes bounds a signed batch accepted for import; a forwarded
// command (an import among them) may be that and its envelope.
const (
	maxBatchBytes   = 32 << 20
	maxCommandBytes = maxBatchBytes + 1<<20
	// maxForwardBatchBytes bounds a batch of forwarded commands: its
	// commands' bytes (or one command of any size) and their frames.
	maxForwardBatchBytes = maxCommandBytes + 1<<20
	pathImport           = "/v1/admin/federation/import"
)

// TrustRequest adds a region to the trust store (or a key to it).
type TrustRequest struct {
	Region       string `json:"region"`
	KeyID        string `json:"key_id"`
	PublicKeyPEM string `json:"public_key_pem"`
	Serve        bool   `json:"serve"`
	Merge        bool   `json:"merge"`
	// StartSeq is the first batch to take when none of the region's is
	// kept (0: the oldest its holders offer); needs command version 3.
	StartSeq uint `json:"start_seq,omitempty"`
}

// GAENSourceRequest trusts a GAEN key server whose signed export files
// this region imports and merges into its own (replacing the source's
// settings and keys whole, so that a rotation names every key in force).
type GAENSourceRequest struct {
	Origin     string `json:"origin"`
	IndexURL   string `json:"index_url"`
	ExportRoot string `json:"export_root"`
	// PollSeconds is how often the leader reads the index (10 to 86,400).
	PollSeconds uint32             `json:"poll_seconds"`
	Keys        []ExportKeyRequest `json:"keys"`
}

// ExportKeyRequest is one key that signs a GAEN source's files, as its
// export.sig names it.
type ExportKeyRequest struct {
	KeyID        string `json:"key_id"`
	KeyVersion   string `json:"key_version"`
	PublicKeyPEM string `json:"public_key_pem"`
}

// OriginStatus is what a node keeps of one origin.
type OriginStatus struct {
	Origin   string `json:"origin"`
	FirstSeq uint32 `json:"first_seq"`
	LastSeq  uint32 `json:"last_seq"`
	Batches  int    `json:"batches"`
	// NextSeq is the batch this region takes next (other regions only).
	NextSeq uint32 `json:"next_seq,omitempty"`
}

// signedBatch serves a signed federation batch: this region's own, signed
// on the fly (Ed25519 is deterministic: every node gives the same bytes),
// or another region's exactly as received.
func (s *Server) signedBatch(c *gin.Context) {
	seq, err := strconv.ParseUint(c.Param("seq"), 10, 32)
	if err != nil || seq == 0 {
		fail(c, http.StatusBadRequest, "bad_request", "seq: want a batch number from 1")
		return
	}
	origin := c.Param("origin")
	var data []byte
	var ok bool
	var retry string // why an own batch cannot be served yet
	if origin == s.node.Config().Region {
		if s.cfg.FederationKey == nil {
			fail(c, http.StatusServiceUnavailable, "no_signing_key", "this node has no federation signing key")
			return
		}
		data, ok = s.ownSigned.get(uint32(seq), func() ([]byte, bool) {
			body, ok := s.node.FSM().FederationBody(uint32(seq))
			if !ok {
				return nil, false
			}
			sig, ready := s.catalog.BatchExportSig(uint32(seq))
			if !ready {
				retry = "the batch's export file is not signed yet" // a moment after the seal
				return nil, false
			}
			signed, err := s.cfg.FederationKey.Sign(body, sig)
			if err != nil {
				s.cfg.Logger.Error("sign own federation batch", "seq", seq, "err", err)
				retry = "this node cannot sign the batch now"
				return nil, false
			}
			return signed, true
		})
	} else {
		data, ok = s.node.FSM().ForeignSigned(origin, uint32(seq))
	}
	if retry != "" {
		fail(c, http.StatusServiceUnavailable, "not_signed", retry)
		return
	}
	if !ok {
		fail(c, http.StatusNotFound, "not_found", "no such batch here")
		return
	}
	serveBytes(c, "application/x-protobuf", immutableCache, feed.ETag(data), data)
}

// signedCache keeps this region's own signed batches, signed once each
// (a batch never changes), the newest maxSignedCached of them.
type signedCache struct {
	mu    sync.Mutex
	bySeq map[uint32][]byte
	order []uint32
}

const maxSignedCached = 256

func (c *signedCache) get(seq uint32, sign func() ([]byte, bool)) ([]byte, bool) {
	c.mu.Lock()
	data, ok := c.bySeq[seq]
	c.mu.Unlock()
	if ok {
		return data, true
	}
	if data, ok = sign(); !ok {
		return nil, false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.bySeq == nil {
		c.bySeq = map[uint32][]byte{}
	}
	if _, ok := c.bySeq[seq]; !ok {
		c.bySeq[seq], c.order = data, append(c.order, seq)
		if len(c.order) > maxSignedCached {
			delete(c.bySeq, c.order[0])
			c.order = c.order[1:]
		}
	}
	return data, true
}

// federationStatus is GET /v1/federation, for anyone: the trust store and
// what this node keeps per origin, with its own region's newest batch.
func (s *Server) federationStatus(c *gin.Context) { c.JSON(http.StatusOK, s.federationView()) }

// federationPool is GET /v1/admin/federation, for operators: the public
// status and the gossip pool as this node sees it (its members' gossip
// addresses, the newest batch each origin announced, the batches rejected
// by reason), which names internal addresses.
func (s *Server) federationPool(c *gin.Context) {
	out := s.federationView()
	sources := []gin.H{}
	for _, r := range s.node.FSM().Trusted() {
		if g := r.GetGaen(); g != nil {
			var keys []string
			for _, k := range g.GetKeys() {
				keys = append(keys, k.GetKeyId()+"/"+k.GetKeyVersion())
			}
			sources = append(sources, gin.H{"origin": r.GetRegion(), "index_url": g.GetIndexUrl(), "export_root": g.GetExportRoot(),
				"poll_seconds": g.GetPollSeconds(), "keys": keys, "files_imported": len(s.node.FSM().ImportedFiles(r.GetRegion()))})
		}
	}
	out["gaen_sources"] = sources
	if countries := s.node.FSM().HubCountries(); len(countries) > 0 {
		batches, keys := 0, 0
		for _, b := range s.node.FSM().HubBatches() {
			batches, keys = batches+1, keys+len(b.GetKeyData())
		}
		var codes []string
		for _, hc := range countries {
			codes = append(codes, hc.GetCountry())
		}
		out["hub"] = gin.H{"countries": codes, "batches": batches, "keys": keys}
	}
	if p := s.node.FSM().EFGSProgress(); p != nil {
		var tags int
		for _, u := range p.GetUploads() {
			tags += len(u.GetTags())
		}
		out["efgs"] = gin.H{"upload_mark": p.GetUploadMark(), "uploads": tags, "cursor_tag": p.GetCursor().GetTag(),
			"cursor_next_tag": p.GetCursor().GetNextTag(), "batches_imported": len(p.GetImported())}
	}
	if s.cfg.Pool != nil {
		out["pool"] = s.cfg.Pool.Status()
	}
	c.JSON(http.StatusOK, out)
}

func (s *Server) federationView() gin.H {
	f := s.node.FSM()
	first, last, _ := f.OwnChain()
	origins := []OriginStatus{{Origin: s.node.Config().Region, FirstSeq: first, LastSeq: last, Batches: len(f.Batches())}}
	trusted := []gin.H{}
	for _, r := range f.Trusted() {
		kept := f.ForeignBatches(r.GetRegion())
		st := OriginStatus{Origin: r.GetRegion(), Batches: len(kept)}
		st.NextSeq, _ = f.NextForeign(r.GetRegion())
		if len(kept) > 0 {
			st.FirstSeq, st.LastSeq = kept[0].GetSeq(), kept[len(kept)-1].GetSeq()
		}
		origins = append(origins, st)
		var ids []string
		for _, k := range r.GetKeys() {
			ids = append(ids, k.GetId())
		}
		entry := gin.H{"region": r.GetRegion(), "key_ids": ids, "serve": r.GetServe(), "merge": r.GetMerge(), "start_seq": r.GetStartSeq()}
		if r.GetKind() != "" {
			entry["kind"], entry["files_imported"] = r.GetKind(), len(f.ImportedFiles(r.GetRegion()))
		}
		trusted = append(trusted, entry)
	}
	return gin.H{"region": s.node.Config().Region, "origins": origins, "trusted": trusted}
}

// importBatch takes a signed batch (raw bytes) and commits it if the
// state machine accepts it.
func (s *Server) importBatch(c *gin.Context) {
	data, err := io.ReadAll(http.MaxBytesReader(c.Writer, c.Request.Body, maxBatchBytes))
	if err != nil {
		fail(c, http.StatusRequestEntityTooLarge, "bad_request", "batch too large or unreadable: "+err.Error())
		return
	}
	// Checked first, at the version it would be stamped with, so that a
	// refused batch never reaches the raft log.
	_, _, _, refused := s.node.FSM().CheckImport(data, min(s.node.RegionVersion(), command.Version))
	if refused != nil {
		fail(c, http.StatusUnprocessableEntity, string(refused.Code), refused.Message)
		return
	}
	res, err := command.ImportBatch(c.Request.Context(), s.node, data)
	if errors.As(err, &refused) && refused.Code != command.CodeInvalidCommand {
		fail(c, http.StatusUnprocessableEntity, string(refused.Code), refused.Message)
		return
	}
	if err != nil {
		failErr(c, err)
		return
	}
	protoJSON(c, http.StatusOK, res)
}

func (s *Server) putTrust(c *gin.Context) {
	var req TrustRequest
	if !bindStrict(c, &req) {
		return
	}
	der, err := federation.PublicKeyDER([]byte(req.PublicKeyPEM))
	if err != nil || req.KeyID == "" {
		fail(c, http.StatusBadRequest, "bad_request", "want region, key_id and an Ed25519 public_key_pem")
		return
	}
	err = command.PutTrust(c.Request.Context(), s.node, &fsmpb.TrustedRegion{
		Region: req.Region, Serve: req.Serve, Merge: req.Merge, StartSeq: uint32(min(req.StartSeq, math.MaxUint32)), Keys: []*fsmpb.TrustKey{{Id: req.KeyID, PublicKeyDer: der}}})
	if err != nil {
		failErr(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"region": req.Region, "key_id": req.KeyID})
}

func (s *Server) removeTrust(c *gin.Context) {
	if err := command.RemoveTrust(c.Request.Context(), s.node, c.Param("region"), c.Query("key_id")); err != nil {
		failErr(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"removed": c.Param("region"), "key_id": c.Query("key_id")})
}

// regionIndex lists a region's batch files: this region's own or, from
// the batches kept here, another's, so that any node of any region serves
// any region's apps.
func (s *Server) regionIndex(c *gin.Context) {
	body := []byte(strings.Join(s.catalog.RegionIndex(c.Param("region"), s.node.FSM(), s.cfg.Now()), "\n"))
	serveBytes(c, "text/plain; charset=utf-8", indexCache, feed.ETag(body), body)
}

// regionFile serves one of a region's batch files, byte-identical to the
// region's own (its export key signed it).
func (s *Server) regionFile(c *gin.Context) {
	f, err := s.catalog.RegionFile(s.cfg.Now(), c.Param("region"), c.Param("name"), s.node.FSM())
	if err != nil {
		fail(c, http.StatusNotFound, "not_found", "no such export file")
		return
	}
	serveBytes(c, "application/zip", immutableCache, f.ETag, f.Data)
}

// putGAENSource is POST /v1/admin/trust/gaen: trust (or update) a GAEN
// source. The state machine checks the URLs, the interval and the keys.
func (s *Server) putGAENSource(c *gin.Context) {
	var req GAENSourceRequest
	if !bindStrict(c, &req) {
		return
	}
	src := &fsmpb.GAENSource{IndexUrl: req.IndexURL, ExportRoot: req.ExportRoot, PollSeconds: req.PollSeconds}
	for _, k := range req.Keys {
		pub, err := export.ParsePublicKeyPEM([]byte(k.PublicKeyPEM))
		if err != nil {
			fail(c, http.StatusBadRequest, "bad_request", fmt.Sprintf("key %q: want a P-256 public key PEM: %v", k.KeyID, err))
			return
		}
		der, err := x509.MarshalPKIXPublicKey(pub)
		if err != nil {
			fail(c, http.StatusBadRequest, "bad_request", fmt.Sprintf("key %q: %v", k.KeyID, err))
			return
		}
		src.Keys = append(src.Keys, &fsmpb.ExportKey{KeyId: k.KeyID, KeyVersion: k.KeyVersion, PublicKeyDer: der})
	}
	err := command.PutTrust(c.Request.Context(), s.node, &fsmpb.TrustedRegion{Region: req.Origin, Kind: fsm.TrustGAENExport, Merge: true, Gaen: src})
	if err != nil {
		failErr(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"origin": req.Origin, "keys": len(src.Keys)})
}

// putEFGSCountry is POST /v1/admin/trust/efgs: trust a country of the EU
// gateway, whose keys this region imports from the gateway's downloads.
func (s *Server) putEFGSCountry(c *gin.Context) {
	var req struct {
		Country string `json:"country"`
	}
	if !bindStrict(c, &req) {
		return
	}
	if err := command.PutTrust(c.Request.Context(), s.node, &fsmpb.TrustedRegion{Region: req.Country, Kind: fsm.TrustEFGSCountry, Merge: true}); err != nil {
		failErr(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"country": req.Country})
}

// HubCountryRequest registers (or replaces) a country of the stand-in
// gateway this region serves: its authentication certificates, which name
// it in the hub's TLS handshake, and its signing certificates, each with
// the trust anchor's signature over its PEM text.
type HubCountryRequest struct {
	Country      string             `json:"country"`
	AuthCertsPEM []string           `json:"auth_certs_pem"`
	Signers      []HubSignerRequest `json:"signers"`
	// Remove removes the country (nothing else is given).
	Remove bool `json:"remove,omitempty"`
}

// HubSignerRequest is a signing certificate and the trust anchor's
// signature over its PEM text (base64).
type HubSignerRequest struct {
	PEM             string `json:"pem"`
	AnchorSignature string `json:"anchor_signature"`
}

// putHubCountry is POST /v1/admin/hub/countries.
func (s *Server) putHubCountry(c *gin.Context) {
	var req HubCountryRequest
	if !bindStrict(c, &req) {
		return
	}
	hc := &fsmpb.HubCountry{Country: req.Country, Remove: req.Remove}
	for _, p := range req.AuthCertsPEM {
		cert, err := parseCertPEM(p)
		if err != nil {
			fail(c, http.StatusBadRequest, "bad_request", "an authentication certificate: "+err.Error())
			return
		}
		hc.AuthThumbprints = append(hc.AuthThumbprints, efgs.Thumbprint(cert))
	}
	for _, sg := range req.Signers {
		cert, err := parseCertPEM(sg.PEM)
		if err != nil {
			fail(c, http.StatusBadRequest, "bad_request", "a signing certificate: "+err.Error())
			return
		}
		hc.Signers = append(hc.Signers, &fsmpb.HubSigner{Thumbprint: efgs.Thumbprint(cert), Pem: sg.PEM, AnchorSignature: sg.AnchorSignature})
	}
	if err := command.PutHubCountry(c.Request.Context(), s.node, hc); err != nil {
		failErr(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"country": req.Country, "auth_certs": len(hc.AuthThumbprints), "signers": len(hc.Signers)})
}

func parseCertPEM(text string) (*x509.Certificate, error) {
	block, _ := pem.Decode([]byte(text))
	if block == nil || block.Type != "CERTIFICATE" {
		return nil, errors.New("no PEM certificate")
	}
	return x509.ParseCertificate(block.Bytes)
}

// efgsCallback is GET /v1/efgs/callback?batchTag=…&date=…, which the EU
// gateway calls when a download batch is new: it wakes the leader's
// exchange (a follower passes the wake on), which then downloads from its
// replicated cursor; the query only says that something is new. Wakes
// coalesce, so a stranger who calls it costs one early download pass.
func (s *Server) efgsCallback(c *gin.Context) {
	if err := s.node.Wake(c.Request.Context(), "efgs"); err != nil {
		failErr(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{})
}
