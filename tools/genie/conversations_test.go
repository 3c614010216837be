package genie

import (
	"strconv"
	"testing"
	"time"
)

// Live conversations are capped: past the cap, inserts evict instead of
// growing the map without bound.
func TestConversationsBounded(t *testing.T) {
	c := &conversations{m: map[convKey]convEntry{}}
	for i := range maxConversations * 3 {
		c.put(convKey{principal: "p", conversation: strconv.Itoa(i)}, "g"+strconv.Itoa(i), time.Hour)
	}
	if n := len(c.m); n > maxConversations {
		t.Fatalf("%d conversations kept, cap %d", n, maxConversations)
	}
	last := convKey{principal: "p", conversation: strconv.Itoa(maxConversations*3 - 1)}
	if got := c.get(last); got == "" {
		t.Error("the newest conversation was evicted")
	}
}
