package mcp

import "time"

// PooledSessions is the number of sessions in p's pool.
func (p *Provider) PooledSessions() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.sessions)
}

// SetClock replaces p's clock.
func (p *Provider) SetClock(now func() time.Time) { p.now = now }
