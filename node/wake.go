package node

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
)

// PathWake is the member route that wakes a leader job (PathWake + name).
const PathWake = "/internal/v2/wake/"

// wakes are the channels leader jobs wait on besides their timers, by
// name; a wake while one is pending is the same wake.
type wakes struct {
	mu sync.Mutex
	ch map[string]chan struct{}
}

// get returns the channel of name, made when make is set (a job that
// waits on it); nil for a name no job waits on.
func (w *wakes) get(name string, make_ bool) chan struct{} {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.ch == nil {
		w.ch = map[string]chan struct{}{}
	}
	if w.ch[name] == nil && make_ {
		w.ch[name] = make(chan struct{}, 1)
	}
	return w.ch[name]
}

// Woken is the channel a leader job named name waits on besides its
// timer: Wake signals it on the leader.
func (n *Node) Woken(name string) <-chan struct{} { return n.wakes.get(name, true) }

// WakeHere signals this node's job named name (the member route's
// handler); nothing when no job waits on that name.
func (n *Node) WakeHere(name string) {
	ch := n.wakes.get(name, false)
	if ch == nil {
		return
	}
	select {
	case ch <- struct{}{}:
	default: // a wake is pending: the same one
	}
}

// Wake wakes the leader's job named name: here when this node leads, else
// by a member request to the leader. Wakes coalesce, so a flood of them
// costs one run of the job.
func (n *Node) Wake(ctx context.Context, name string) error {
	if n.IsLeader() {
		n.WakeHere(name)
		return nil
	}
	url := n.leaderURL()
	if url == "" {
		return errRetry{errors.New("no leader to wake")}
	}
	status, body, err := n.send(ctx, http.MethodPost, url+PathWake+name, "", nil)
	if err != nil {
		return fmt.Errorf("wake %s on the leader: %w", name, err)
	}
	if status != http.StatusOK {
		return fmt.Errorf("wake %s on the leader: %d %s", name, status, body)
	}
	return nil
}
