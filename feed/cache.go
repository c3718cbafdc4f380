package feed

import (
	"sync"
)

// cache keeps built results by name, evicting the oldest entries beyond a
// bound in number and in bytes, and builds each name once even under
// concurrent requests. A result larger than the byte bound is not kept.
type cache[V any] struct {
	max      int
	maxBytes int
	size     func(V) int

	mu       sync.Mutex
	entries  map[string]V
	order    []string
	bytes    int
	building map[string]chan struct{}
}

func newCache[V any](max, maxBytes int, size func(V) int) *cache[V] {
	return &cache[V]{max: max, maxBytes: maxBytes, size: size, entries: map[string]V{}, building: map[string]chan struct{}{}}
}

// lookup returns the cached value for name, if there is one.
func (c *cache[V]) lookup(name string) (V, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	v, ok := c.entries[name]
	return v, ok
}

// get returns the cached value for name, or builds it with build.
func (c *cache[V]) get(name string, build func() (V, error)) (V, error) {
	for {
		c.mu.Lock()
		if v, ok := c.entries[name]; ok {
			c.mu.Unlock()
			return v, nil
		}
		wait, busy := c.building[name]
		if !busy {
			done := make(chan struct{})
			c.building[name] = done
			c.mu.Unlock()
			v, err := build()
			c.mu.Lock()
			delete(c.building, name)
			if err == nil {
				c.put(name, v)
			}
			c.mu.Unlock()
			close(done)
			return v, err
		}
		c.mu.Unlock()
		<-wait
	}
}

func (c *cache[V]) put(name string, v V) {
	n := c.size(v)
	if n > c.maxBytes {
		return
	}
	c.entries[name] = v
	c.order = append(c.order, name)
	c.bytes += n
	for len(c.order) > c.max || c.bytes > c.maxBytes {
		c.bytes -= c.size(c.entries[c.order[0]])
		delete(c.entries, c.order[0])
		c.order = c.order[1:]
	}
}
