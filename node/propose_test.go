package node

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/covid-backend/covid-backend/command"
	"github.com/covid-backend/covid-backend/fsm/fsmpb"
)

// A round holds the oldest waiting proposals, at most a round's worth,
// drops those whose callers gave up, and counts its round out once none
// waits.
func TestProposeQueueTake(t *testing.T) {
	gone, cancel := context.WithCancel(context.Background())
	cancel()
	p := func(ctx context.Context) *proposal { return &proposal{ctx: ctx} }
	many := make([]*proposal, maxRoundEntries+5)
	for i := range many {
		many[i] = p(context.Background())
	}
	for _, tc := range []struct {
		name       string
		pending    []*proposal
		round      int
		left       int
		roundEnded bool
	}{
		{"none", nil, 0, 0, true},
		{"one", []*proposal{p(context.Background())}, 1, 0, false},
		{"given up dropped", []*proposal{p(gone), p(context.Background()), p(gone)}, 1, 0, false},
		{"only given up", []*proposal{p(gone)}, 0, 0, true},
		{"round bound", many, maxRoundEntries, 5, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			q := batchQueue[*proposal]{pending: tc.pending, senders: 1}
			round := q.take(pickRound)
			if len(round) != tc.round || len(q.pending) != tc.left {
				t.Fatalf("took %d, left %d; want %d and %d", len(round), len(q.pending), tc.round, tc.left)
			}
			if ended := q.senders == 0; ended != tc.roundEnded {
				t.Fatalf("senders %d after take", q.senders)
			}
			var live []*proposal
			for _, p := range tc.pending {
				if p.ctx.Err() == nil {
					live = append(live, p)
				}
			}
			for i, p := range round {
				if p != live[i] {
					t.Fatalf("proposal %d of the round is not the %dth oldest still waiting", i, i)
				}
			}
		})
	}
}

// Writes proposed while a round commits share the next one, and each gets
// its own result: 64 members recorded at once on a one-node region (bolt
// on disk, fsync per round) all land, in fewer rounds than writes.
func TestConcurrentWritesShareRounds(t *testing.T) {
	n, reg := measuredLeader(t)
	before := histogramCounts(t, reg)["covid_raft_round_commands{}"]
	const writes = 64
	var wg sync.WaitGroup
	errs := make(chan error, writes)
	for i := range writes {
		wg.Go(func() {
			node := &fsmpb.Node{Id: fmt.Sprintf("m%d", i), RaftAddr: fmt.Sprintf("127.0.1.%d:7000", i), HttpAddr: fmt.Sprintf("127.0.1.%d:8080", i)}
			if err := command.PutNode(context.Background(), n, node); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	for i := range writes {
		if m, ok := n.FSM().Node(fmt.Sprintf("m%d", i)); !ok || m.GetRaftAddr() != fmt.Sprintf("127.0.1.%d:7000", i) {
			t.Fatalf("member m%d: %v %v", i, m, ok)
		}
	}
	rounds := histogramCounts(t, reg)["covid_raft_round_commands{}"] - before
	if rounds >= writes {
		t.Fatalf("%d writes took %d rounds: none was shared", writes, rounds)
	}
	t.Logf("%d writes in %d rounds", writes, rounds)
}
