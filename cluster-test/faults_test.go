package clustertest

import (
	"fmt"
	"slices"
	"testing"
	"time"
)

func without(ids []string, gone ...string) []string {
	return slices.DeleteFunc(slices.Clone(ids), func(id string) bool { return slices.Contains(gone, id) })
}

// kill9LeaderUnderLoad kills the leader while uploads go on through every
// node, checks that a new leader takes over and nothing acknowledged is
// lost, runs beforeRestart on the survivors, then restarts the old leader
// and waits for it to catch up.
func kill9LeaderUnderLoad(t *testing.T, c *cluster, beforeRestart func(survivors []string)) (oldLeader string) {
	c.form(3)
	all := c.ids(3)
	l := c.startLoad(6, func() []string {
		var up []string
		for _, id := range all {
			if c.running(id) {
				up = append(up, id)
			}
		}
		return up
	})
	defer l.stop()
	c.waitFor("uploads before the fault", 30*time.Second, func() bool { return l.acked.len() >= 14*30 })
	leader := c.waitLeader(10*time.Second, all...)
	ackedBefore := l.acked.len()
	c.kill9(leader)
	rest := without(all, leader)
	killed := time.Now()
	newLeader := c.waitLeader(15*time.Second, rest...)
	t.Logf("new leader %s after %v (%d keys acknowledged before the kill)", newLeader, time.Since(killed).Round(time.Millisecond), ackedBefore)
	c.waitFor("uploads after the fault", 30*time.Second, func() bool { return l.acked.len() >= ackedBefore+14*30 })
	l.stop()
	c.waitHasAll(l.acked, 20*time.Second, rest...)
	beforeRestart(rest)
	i := slices.Index(all, leader) + 1
	c.start(i)
	c.waitHasAll(l.acked, 60*time.Second, all...)
	return leader
}

// The old leader, restarted, catches up from the raft log.
func TestKill9LeaderUnderLoadCatchUpFromLog(t *testing.T) {
	c := newCluster(t)
	old := kill9LeaderUnderLoad(t, c, func([]string) {})
	if c.logContains(old, "Installed remote snapshot") {
		t.Fatalf("%s caught up from a snapshot; this scenario wants the log path", old)
	}
}

// With the log compacted past what the old leader has, the restarted old
// leader can only catch up from a snapshot sent by the new leader. The
// survivors snapshot on the operator's request (admin API) after the kill,
// keeping 16 trailing entries of the 30 or more written since.
func TestKill9LeaderUnderLoadCatchUpFromSnapshot(t *testing.T) {
	c := newCluster(t, "--raft-trailing-logs", "16")
	old := kill9LeaderUnderLoad(t, c, func(survivors []string) {
		for _, id := range survivors {
			c.adminPost(id, "/v1/admin/snapshot")
		}
	})
	if !c.logContains(old, "Installed remote snapshot") {
		t.Fatalf("%s did not catch up from a snapshot:\n%s", old, c.logTail(old))
	}
}

// The leader cut off from both followers acknowledges nothing; the
// majority elects a leader and goes on; after healing all converge.
func TestLeaderPartitionedFromFollowers(t *testing.T) {
	c := newCluster(t, "--write-timeout", "3s")
	fw := newFirewall(t, c.subnet)
	c.form(3)
	all := c.ids(3)
	leader := c.waitLeader(10*time.Second, all...)
	majority := without(all, leader)
	l := c.startLoad(4, func() []string { return majority })
	defer l.stop()
	c.waitFor("uploads before the partition", 30*time.Second, func() bool { return l.acked.len() >= 14*20 })

	fw.isolate(c.node(leader).ip, c.node(majority[0]).ip, c.node(majority[1]).ip)
	for range 3 {
		if keys, err := c.uploadFor(c.node(leader).url(), 0); err == nil {
			t.Fatalf("isolated old leader %s acknowledged an upload: %v", leader, keys)
		}
	}
	newLeader := c.waitLeader(20*time.Second, majority...)
	if newLeader == leader {
		t.Fatalf("majority still follows the isolated %s", leader)
	}
	before := l.acked.len()
	c.waitFor("uploads through the majority", 30*time.Second, func() bool { return l.acked.len() >= before+14*20 })
	fw.heal()
	l.stop()
	c.waitLeader(20*time.Second, all...)
	c.waitHasAll(l.acked, 30*time.Second, all...)
}

// Members are added and removed, the leader among them, while uploads go
// on; the members at the end hold every acknowledged key.
func TestMembershipChangesUnderLoad(t *testing.T) {
	c := newCluster(t)
	c.form(3)
	members := []string{"n1", "n2", "n3"}
	current := func() []string { return slices.Clone(members) }
	var mu = make(chan struct{}, 1)
	mu <- struct{}{}
	targets := func() []string { <-mu; defer func() { mu <- struct{}{} }(); return current() }
	setMembers := func(m []string) { <-mu; members = m; mu <- struct{}{} }
	l := c.startLoad(4, targets)
	defer l.stop()
	progress := func(what string) {
		n := l.acked.len()
		c.waitFor("uploads after "+what, 30*time.Second, func() bool { return l.acked.len() >= n+14*10 })
	}
	progress("start")

	c.start(4, "--join", c.joinAddr("n1"))
	c.waitReady("n4")
	c.waitAuthority("n4")
	setMembers([]string{"n1", "n2", "n3", "n4"})
	progress("adding n4")

	leader := c.waitLeader(10*time.Second, targets()...)
	follower := without(targets(), leader)[0]
	setMembers(without(targets(), follower))
	c.cli("members", "remove", "--addr", c.node(leader).url(), "--id", follower)
	c.stop(follower)
	progress("removing follower " + follower)

	leader = c.waitLeader(10*time.Second, targets()...)
	via := without(targets(), leader)[0]
	setMembers(without(targets(), leader))
	c.cli("members", "remove", "--addr", c.node(via).url(), "--id", leader)
	newLeader := c.waitLeader(15*time.Second, targets()...)
	if newLeader == leader {
		t.Fatalf("removed leader %s still leads", leader)
	}
	c.stop(leader)
	progress("removing leader " + leader)

	c.start(5, "--join", c.joinAddr(newLeader))
	c.waitReady("n5")
	c.waitAuthority("n5")
	setMembers(append(targets(), "n5"))
	progress("adding n5")

	leader = c.waitLeader(10*time.Second, targets()...)
	dead := without(targets(), leader)[0]
	setMembers(without(targets(), dead))
	c.kill9(dead)
	c.cli("members", "remove", "--addr", c.node(leader).url(), "--id", dead)
	progress("removing dead member " + dead)

	c.start(6, "--join", c.joinAddr(leader))
	c.waitReady("n6")
	c.waitAuthority("n6")
	setMembers(append(targets(), "n6"))
	progress("adding n6")
	l.stop()

	final := targets()
	st, err := c.status(final[0])
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, m := range st.Members {
		ids = append(ids, m.ID)
	}
	slices.Sort(ids)
	slices.Sort(final)
	if fmt.Sprint(ids) != fmt.Sprint(final) {
		t.Fatalf("members %v, want %v", ids, final)
	}
	c.waitHasAll(l.acked, 30*time.Second, final...)
}
