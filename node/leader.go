package node

import (
	"context"
	"time"

	"github.com/covid-backend/covid-backend/fsm/fsmpb"
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
			if !isLeader {
				n.cfg.Logger.Info("lost leadership", "node", n.cfg.ID)
				continue
			}
			n.cfg.Logger.Info("became leader", "node", n.cfg.ID, "term", n.raft.CurrentTerm())
			var leaderCtx context.Context
			leaderCtx, stop = context.WithCancel(ctx)
			n.goRun(func() { n.runLeaderJobs(leaderCtx) })
		}
	}
}

// runLeaderJobs starts every leader job in its own goroutine; a job that
// fails is retried after a pause while leadership lasts.
func (n *Node) runLeaderJobs(ctx context.Context) {
	jobs := []LeaderJob{registerSelf, sealLoop, expireLoop}
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

// registerSelf records this node's addresses in the replicated state so
// that followers can forward writes to it.
func registerSelf(ctx context.Context, n *Node) error {
	want := &fsmpb.Node{Id: n.cfg.ID, RaftAddr: string(n.transport.LocalAddr()), HttpAddr: n.cfg.HTTPAddr}
	if have, ok := n.fsm.Node(n.cfg.ID); ok && have.GetHttpAddr() == want.HttpAddr && have.GetRaftAddr() == want.RaftAddr {
		return nil
	}
	_, err := n.Apply(ctx, &fsmpb.Command{Type: fsmpb.CommandType_COMMAND_TYPE_PUT_NODE, PutNode: want})
	return err
}
