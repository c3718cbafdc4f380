package node

import (
	"bytes"
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"

	"github.com/hashicorp/raft"

	"github.com/covid-backend/covid-backend/command"
	"github.com/covid-backend/covid-backend/fsm/fsmpb"
)

// Member is one server of the region's raft configuration.
type Member struct {
	ID       string `json:"id"`
	RaftAddr string `json:"raft_addr"`
	HTTPAddr string `json:"http_addr,omitempty"`
	Suffrage string `json:"suffrage"`
	Leader   bool   `json:"leader"`
}

// JoinRequest asks the leader to admit a node as a voter.
type JoinRequest struct {
	ID       string `json:"id"`
	RaftAddr string `json:"raft_addr"`
	HTTPAddr string `json:"http_addr"`
	Region   string `json:"region"`
	// CommandVersion is the newest command version the node's build
	// applies; a build older than what the region uses is refused (0: a
	// build before versions were reported, which applies version 1). The
	// node records its version itself once it runs as a member.
	CommandVersion uint32 `json:"command_version,omitempty"`
	// TLS tells whether the node speaks raft over mutual TLS; a region
	// admits only nodes that speak it as its members do. A node asking to
	// join says; an operator adding a node need not (nil: as the region).
	TLS *bool `json:"tls,omitempty"`
	// DryRun checks everything and changes nothing.
	DryRun bool `json:"dry_run,omitempty"`
	// Edge admits the node as a non-voter (a read-only edge node).
	Edge bool `json:"edge,omitempty"`
	// CertSHA256 and CertNotBefore describe the node's member certificate,
	// recorded with it at once (as it records them itself later): the join
	// carries the admin token, so the leader takes them as they come.
	CertSHA256    []byte `json:"cert_sha256,omitempty"`
	CertNotBefore int64  `json:"cert_not_before,omitempty"`
}

// MembershipError is a refused membership change, with the HTTP status the
// API answers it with (possibly the leader's answer to a forwarded request).
type MembershipError struct {
	Status  int
	Message string
}

func (e *MembershipError) Error() string { return e.Message }

func refusal(status int, format string, args ...any) error {
	return &MembershipError{Status: status, Message: fmt.Sprintf(format, args...)}
}

// Members returns the region's raft configuration as this node knows it,
// with each member's HTTP address from the replicated state.
func (n *Node) Members() ([]Member, error) {
	f := n.raft.GetConfiguration()
	if err := f.Error(); err != nil {
		return nil, fmt.Errorf("read raft configuration: %w", err)
	}
	_, leader := n.raft.LeaderWithID()
	var out []Member
	for _, s := range f.Configuration().Servers {
		m := Member{ID: string(s.ID), RaftAddr: string(s.Address), Suffrage: s.Suffrage.String(), Leader: s.ID == leader}
		if meta, ok := n.fsm.Node(m.ID); ok {
			m.HTTPAddr = meta.GetHttpAddr()
		}
		out = append(out, m)
	}
	return out, nil
}

// Join admits a node as a voter (on the leader; a follower forwards).
func (n *Node) Join(ctx context.Context, req JoinRequest) error {
	body, _ := json.Marshal(req)
	return n.onLeader(ctx, func() error { return n.joinLocal(ctx, req) }, http.MethodPost, PathMembers, body)
}

func (n *Node) joinLocal(ctx context.Context, req JoinRequest) error {
	if req.Region != n.cfg.Region {
		return refusal(http.StatusConflict, "node %q belongs to region %q, this is region %q", req.ID, req.Region, n.cfg.Region)
	}
	probe := Config{ID: req.ID, Region: req.Region, DataDir: "-", HTTPAddr: req.HTTPAddr, RaftAddr: req.RaftAddr, AdminToken: "-"}
	if err := probe.Validate(); err != nil {
		return refusal(http.StatusBadRequest, "join request: %v", err)
	}
	servers, err := n.servers()
	if err != nil {
		return err
	}
	for _, s := range servers {
		switch {
		case string(s.ID) == req.ID && string(s.Address) != req.RaftAddr:
			return refusal(http.StatusConflict, "node id %q is already a member at %s", req.ID, s.Address)
		case string(s.ID) != req.ID && string(s.Address) == req.RaftAddr:
			return refusal(http.StatusConflict, "raft address %s is already used by member %q", req.RaftAddr, s.ID)
		}
	}
	if tlsHere := n.cfg.MemberTLS != nil; req.TLS != nil && *req.TLS != tlsHere {
		return refusal(http.StatusConflict, "node %q speaks raft %s; this region speaks it %s", req.ID, raftMode(*req.TLS), raftMode(tlsHere))
	}
	if v := max(1, req.CommandVersion); v < n.RegionVersion() {
		return refusal(http.StatusConflict, "node %q applies command version %d, the region uses %d: upgrade it first", req.ID, v, n.RegionVersion())
	}
	if req.DryRun {
		return nil
	}
	add, kind := n.raft.AddVoter, "voter"
	if req.Edge {
		add, kind = n.raft.AddNonvoter, "edge node (non-voter)"
	}
	if err := waitFuture(ctx, add(raft.ServerID(req.ID), raft.ServerAddress(req.RaftAddr), 0, n.cfg.WriteTimeout)); err != nil {
		return retryIfLeadership(fmt.Errorf("add %s %s: %w", kind, req.ID, err))
	}
	n.cfg.Logger.Info("member added", "id", req.ID, "raft_addr", req.RaftAddr, "as", kind)
	return command.PutNode(ctx, n, &fsmpb.Node{Id: req.ID, RaftAddr: req.RaftAddr, HttpAddr: req.HTTPAddr,
		CommandVersion: max(1, req.CommandVersion), CertSha256: req.CertSHA256, CertNotBeforeUnix: req.CertNotBefore})
}

// Promote makes an edge node (a non-voter) a voter (on the leader; a
// follower forwards).
func (n *Node) Promote(ctx context.Context, id string) error {
	body, _ := json.Marshal(map[string]string{"id": id})
	return n.onLeader(ctx, func() error { return n.promoteLocal(ctx, id) }, http.MethodPost, PathMembers+"/promote", body)
}

func (n *Node) promoteLocal(ctx context.Context, id string) error {
	servers, err := n.servers()
	if err != nil {
		return err
	}
	for _, s := range servers {
		if string(s.ID) != id {
			continue
		}
		if s.Suffrage == raft.Voter {
			return refusal(http.StatusConflict, "member %q already votes", id)
		}
		if err := waitFuture(ctx, n.raft.AddVoter(s.ID, s.Address, 0, n.cfg.WriteTimeout)); err != nil {
			return retryIfLeadership(fmt.Errorf("promote %s: %w", id, err))
		}
		n.cfg.Logger.Info("edge node promoted to voter", "id", id)
		return nil
	}
	return refusal(http.StatusNotFound, "no member %q", id)
}

// Remove takes a member out of the region, dead or alive. Removing the
// leader first moves leadership to another voter, which then removes it.
func (n *Node) Remove(ctx context.Context, id string) error {
	return n.onLeader(ctx, func() error { return n.removeLocal(ctx, id) },
		http.MethodDelete, PathMembers+"/"+url.PathEscape(id), nil)
}

func (n *Node) removeLocal(ctx context.Context, id string) error {
	servers, err := n.servers()
	if err != nil {
		return err
	}
	found := false
	for _, s := range servers {
		found = found || string(s.ID) == id
	}
	if !found {
		return refusal(http.StatusNotFound, "no member with id %q", id)
	}
	if id == n.cfg.ID {
		if len(servers) == 1 {
			return refusal(http.StatusConflict, "cannot remove %q: it is the last member", id)
		}
		if err := n.raft.LeadershipTransfer().Error(); err != nil {
			return errRetry{fmt.Errorf("move leadership before removing %s: %w", id, err)}
		}
		return errRetry{errors.New("leadership moved; the new leader removes this node")}
	}
	if err := waitFuture(ctx, n.raft.RemoveServer(raft.ServerID(id), 0, n.cfg.WriteTimeout)); err != nil {
		return retryIfLeadership(fmt.Errorf("remove server %s: %w", id, err))
	}
	n.cfg.Logger.Info("member removed", "id", id)
	err = command.RemoveNode(ctx, n, id)
	var refused *command.Error
	if errors.As(err, &refused) && refused.Code == command.CodeUnknownNode {
		return nil
	}
	return err
}

// TransferLeadership moves leadership to the given member, or to the most
// up-to-date other voter when id is empty.
func (n *Node) TransferLeadership(ctx context.Context, id string) error {
	body, _ := json.Marshal(map[string]string{"id": id})
	return n.onLeader(ctx, func() error { return n.transferLocal(id) }, http.MethodPost, PathMembers+"/transfer-leadership", body)
}

func (n *Node) transferLocal(id string) error {
	if id == n.cfg.ID {
		return nil
	}
	if id == "" {
		return transferError(n.raft.LeadershipTransfer().Error())
	}
	servers, err := n.servers()
	if err != nil {
		return err
	}
	var addr raft.ServerAddress
	for _, s := range servers {
		if string(s.ID) == id {
			addr = s.Address
		}
	}
	if addr == "" {
		return refusal(http.StatusNotFound, "no member with id %q", id)
	}
	return transferError(n.raft.LeadershipTransferToServer(raft.ServerID(id), addr).Error())
}

func transferError(err error) error {
	if err != nil {
		return refusal(http.StatusConflict, "leadership transfer: %v", err)
	}
	return nil
}

func (n *Node) servers() ([]raft.Server, error) {
	f := n.raft.GetConfiguration()
	if err := f.Error(); err != nil {
		return nil, fmt.Errorf("read raft configuration: %w", err)
	}
	return f.Configuration().Servers, nil
}

// onLeader runs local on the leader, or forwards the admin request to the
// leader, waiting through elections up to the write timeout.
func (n *Node) onLeader(ctx context.Context, local func() error, method, path string, body []byte) error {
	ctx, cancel := context.WithTimeout(ctx, n.cfg.WriteTimeout)
	defer cancel()
	for attempt := 0; ; attempt++ {
		var err error
		switch url := n.leaderURL(); {
		case n.IsLeader():
			err = local()
		case url != "":
			err = n.forwardAdmin(ctx, method, url+path, body)
		default:
			err = errRetry{errors.New("leader unknown")}
		}
		var retry errRetry
		if !errors.As(err, &retry) {
			return err
		}
		if sleepCtx(ctx, backoff(attempt)) != nil {
			return fmt.Errorf("%w: %v", ErrNoLeader, retry.err)
		}
	}
}

func (n *Node) forwardAdmin(ctx context.Context, method, url string, body []byte) error {
	var reply struct {
		Error string `json:"error"`
	}
	status, err := n.call(ctx, method, url, "application/json", bytes.NewReader(body), &reply)
	switch {
	case err != nil:
		return errRetry{fmt.Errorf("forward to leader: %w", err)}
	case status == http.StatusServiceUnavailable:
		return errRetry{fmt.Errorf("leader busy: %s", reply.Error)}
	case status >= 300:
		return &MembershipError{Status: status, Message: reply.Error}
	}
	return nil
}

func retryIfLeadership(err error) error {
	if errors.Is(err, raft.ErrNotLeader) || errors.Is(err, raft.ErrLeadershipLost) ||
		errors.Is(err, raft.ErrLeadershipTransferInProgress) {
		return errRetry{err}
	}
	return err
}

// IsMember tells whether a peer is a member: its node id is a server
// (voter or not) of the region's raft configuration, and its certificate
// is the one the node recorded for itself (Node.cert_sha256) or a newer
// one (renewed, to be recorded next), and not revoked (REVOKE_CERT). A
// certificate of the region CA alone makes no one a member, and a node
// replaced or renewed under the same id leaves its older certificates
// behind.
func (n *Node) IsMember(p Peer) bool {
	servers, err := n.servers()
	return err == nil && n.takes(servers, p)
}

// takes tells whether a peer is a server of the configuration servers
// presenting a certificate the region takes for it: pinned, not revoked.
func (n *Node) takes(servers []raft.Server, p Peer) bool {
	return hasServer(servers, p.ID) && n.pinned(p) && !n.fsm.CertRevoked(p.CertSHA256)
}

// pinned tells whether a peer presents the certificate its record names,
// or one that started no earlier (a renewal; certificates start on the
// second) (a record without one names none yet).
func (n *Node) pinned(p Peer) bool {
	rec, ok := n.fsm.Node(p.ID)
	return !ok || len(rec.GetCertSha256()) == 0 || p.NotBefore >= rec.GetCertNotBeforeUnix() ||
		subtle.ConstantTimeCompare(rec.GetCertSha256(), p.CertSHA256[:]) == 1
}

// InConfiguration tells whether a node id is a server of the region's
// raft configuration, whatever certificate it presents: with the admin
// token, a member whose certificate is not the recorded one still
// records its own (the token is the operator's word for it).
func (n *Node) InConfiguration(id string) bool {
	servers, err := n.servers()
	return err == nil && hasServer(servers, id)
}

// mayRaft tells whether a peer may speak raft with this node: a member,
// or anyone of the region CA while this node belongs to no region yet (a
// joiner hears from the leader before it holds the configuration that
// names it).
func (n *Node) mayRaft(p Peer) bool {
	servers, err := n.servers()
	return err == nil && (len(servers) == 0 || n.takes(servers, p))
}

func hasServer(servers []raft.Server, id string) bool {
	return slices.ContainsFunc(servers, func(s raft.Server) bool { return string(s.ID) == id })
}

func (n *Node) voters() int {
	servers, err := n.servers()
	if err != nil {
		return 0
	}
	c := 0
	for _, s := range servers {
		if s.Suffrage == raft.Voter {
			c++
		}
	}
	return c
}

func raftMode(tls bool) string {
	if tls {
		return "over mutual TLS"
	}
	return "in plaintext"
}
