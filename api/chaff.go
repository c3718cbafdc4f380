package api

import "time"

// defaultChaffDelay stands in until this node has committed anything.
const defaultChaffDelay = 20 * time.Millisecond

// chaffDelay is how long a decoy upload takes: as long as a random recent
// real upload through this node took, or, before the first, as long as a
// random recent write through it (the commit that dominates an upload),
// so that an observer of the traffic cannot tell decoys by timing.
func (s *Server) chaffDelay() time.Duration {
	if d, ok := s.recent.Sample(); ok {
		return d
	}
	if d, ok := s.node.WriteLatency(); ok {
		return d
	}
	return defaultChaffDelay
}
