package feed

import (
	"sync"
)

// cache keeps built results by name, evicting the oldest entries beyond a
// bound, and builds each name once even under concurrent requests.
type cache[V any] struct {
	max int

	mu       sync.Mutex
	entries  map[string]V
	order    []string
	building map[string]chan struct{}
}

func newCache[V any](max int) *cache[V] {
	return &cache[V]{max: max, entries: map[string]V{}, building: map[string]chan struct{}{}}
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
	c.entries[name] = v
	c.order = append(c.order, name)
	for len(c.order) > c.max {
		delete(c.entries, c.order[0])
		c.order = c.order[1:]
	}
}
