package node

import (
	"context"
	"crypto/sha256"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/covid-backend/covid-backend/command"
	"github.com/covid-backend/covid-backend/fsm/fsmpb"
	"github.com/covid-backend/covid-backend/membertls"
)

// watchLeadership drains raft's NotifyCh (raft blocks if nobody reads it)
// and runs the leader jobs for as long as leadership lasts.
func (n *Node) watchLeadership(ctx context.Context) {
	stop := context.CancelFunc(func() {})
	for {
		select {
		case <-ctx.Done():
			stop()
			return
		case isLeader := <-n.leaderCh:
			stop()
			n.leadershipChanges.Add(1)
			if !isLeader {
				n.cfg.Logger.Info("lost leadership", "node", n.cfg.ID)
				continue
			}
			term := n.raft.CurrentTerm()
			n.cfg.Logger.Info("became leader", "node", n.cfg.ID, "term", term)
			var leaderCtx context.Context
			leaderCtx, stop = context.WithCancel(ctx)
			n.goRun(func() {
				n.catchUpAsLeader(leaderCtx, term)
				if n.leaderCaughtUp.Load() == term {
					n.runLeaderJobs(leaderCtx)
				}
			})
		}
	}
}

// runLeaderJobs starts every leader job in its own goroutine, once the
// new leader has applied every entry committed before its term (a job
// decides from the state: after a restart, before that, a registered
// authority or a set policy is not there yet); a job that
// fails is retried after a pause while leadership lasts.
func (n *Node) runLeaderJobs(ctx context.Context) {
	jobs := []LeaderJob{clockLoop, seedPolicy, sealLoop, expireLoop}
	jobs = append(jobs, n.cfg.LeaderJobs...)
	for _, job := range jobs {
		n.goRun(func() {
			for {
				err := job(ctx, n)
				if err == nil || ctx.Err() != nil {
					return
				}
				n.cfg.Logger.Warn("leader job failed, retrying", "err", err)
				if sleepCtx(ctx, time.Second) != nil {
					return
				}
			}
		})
	}
}

// registerSelf keeps this node's record in the replicated state true: its
// addresses, so that followers can forward writes to it, the command
// version its build applies, so that the leader proposes only what every
// member applies, and its member certificate, so that members speak only
// with that one for its id (IsMember). Every member runs it, from start to shutdown; after a
// restart with a new build the record follows.
func (n *Node) registerSelf(ctx context.Context) {
	for {
		want := &fsmpb.Node{Id: n.cfg.ID, RaftAddr: string(n.transport.LocalAddr()), HttpAddr: n.cfg.HTTPAddr,
			CommandVersion: command.Version}
		if n.cfg.MemberTLS != nil {
			want.CertSha256, want.CertNotBeforeUnix = certRecord(n.cfg.MemberTLS)
		}
		wait := 10 * time.Second
		if have, ok := n.fsm.Node(n.cfg.ID); !ok || !proto.Equal(have, want) {
			wait = time.Second
			if n.isVoter() {
				if err := command.PutNode(ctx, n, want); err != nil && ctx.Err() == nil {
					n.cfg.Logger.Info("could not record this node in the region yet", "err", err)
				}
			}
		}
		if sleepCtx(ctx, wait) != nil {
			return
		}
	}
}

// certRecord is how a member certificate is recorded with its node: its
// SHA-256 and its start.
func certRecord(creds *membertls.Credentials) ([]byte, int64) {
	sum := sha256.Sum256(creds.Leaf.Raw)
	return sum[:], creds.Leaf.NotBefore.Unix()
}

// isVoter tells whether this node is in the region's raft configuration
// (a node waiting to be admitted has nothing to record yet).
func (n *Node) isVoter() bool {
	f := n.raft.GetConfiguration()
	if f.Error() != nil {
		return false
	}
	for _, s := range f.Configuration().Servers {
		if string(s.ID) == n.cfg.ID {
			return true
		}
	}
	return false
}
