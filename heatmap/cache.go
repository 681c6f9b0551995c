package heatmap

import (
	"container/list"
	"sync"
	"time"
)

// renderCache keeps rendered maps (PNG bytes and JSON twins) by query, in
// bounded memory, least recently used out first.
type renderCache struct {
	mu    sync.Mutex
	max   int64
	size  int64
	items map[string]*list.Element
	lru   *list.List
}

type cached struct {
	key     string
	val     any
	size    int64
	gen     uint64
	created time.Time
}

func newRenderCache(maxBytes int64) *renderCache {
	return &renderCache{max: maxBytes, items: map[string]*list.Element{}, lru: list.New()}
}

// get returns a cached value that is still good: made after the project's
// last change, or less than stale ago; with shared (other processes write
// the facts too, unseen by g) only less than stale ago.
func (c *renderCache) get(key string, g genEntry, now time.Time, stale time.Duration, shared bool) (any, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	el := c.items[key]
	if el == nil {
		return nil, false
	}
	e := el.Value.(*cached)
	if (e.gen != g.n || shared) && now.Sub(e.created) >= stale {
		c.remove(el)
		return nil, false
	}
	c.lru.MoveToFront(el)
	return e.val, true
}

func (c *renderCache) put(key string, val any, size int64, g genEntry, now time.Time) {
	if size > c.max/4 {
		return // one map may not push out everything else
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if el := c.items[key]; el != nil {
		c.remove(el)
	}
	c.items[key] = c.lru.PushFront(&cached{key: key, val: val, size: size, gen: g.n, created: now})
	c.size += size
	for c.size > c.max && c.lru.Len() > 0 {
		c.remove(c.lru.Back())
	}
}

func (c *renderCache) remove(el *list.Element) {
	e := el.Value.(*cached)
	c.lru.Remove(el)
	delete(c.items, e.key)
	c.size -= e.size
}

func (c *renderCache) clear() {
	c.mu.Lock()
	defer c.mu.Unlock()
	clear(c.items)
	c.lru.Init()
	c.size = 0
}
