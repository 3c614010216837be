package mcp

import (
	"container/list"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/databricks/databricks-sdk-go"
	mcpclient "github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"

	"github.com/agentrt/agentrt/agent"
)

// Sessions.
//
// A session is pooled per server, client, credential and verified principal,
// at most MaxSessions of them, least recently used evicted first. A session
// that fails at the session level is dropped and the call retried once on a
// fresh one. Anonymous callers get a session per call: with no verified
// principal there is nothing to key a shared session by.

type sessionKey struct {
	url       string
	client    *databricks.WorkspaceClient
	auth      string
	principal string
}

type session struct {
	key   sessionKey
	ready chan struct{} // closed when c or err is set
	c     *mcpclient.Client
	err   error

	// Guarded by Provider.mu.
	lastUsed time.Time     // opened, or last call that succeeded
	refs     int           // the opener and the calls using it
	elem     *list.Element // in Provider.lru; nil once out of the pool
}

// DefaultMaxSessions caps a provider's pool when Options.MaxSessions is 0.
const DefaultMaxSessions = 256

// do runs fn on a session for c and the caller, and once more on a fresh
// session when the first fails at the session level. A session is never
// retried twice, and a tool-level error (an isError result) is not a session
// failure.
func (p *Provider) do(ctx context.Context, c *conn, fn func(*mcpclient.Client) error) error {
	principal := agent.FromContext(ctx).Caller.PrincipalID
	pooled := p.opts.SessionTTL > 0 && principal != ""
	key := sessionKey{url: c.url, client: c.w, auth: c.auth, principal: principal}
	for attempt := 0; ; attempt++ {
		var s *session
		var err error
		if pooled {
			s, err = p.acquire(ctx, c, key)
		} else {
			s = &session{}
			s.c, err = p.open(ctx, c)
		}
		if err != nil {
			return err
		}
		err = fn(s.c)
		lost := err != nil && ctx.Err() == nil && sessionLost(err)
		if pooled {
			p.release(s, err == nil, lost)
		} else {
			go s.c.Close() // a DELETE, which a hung server would hold for mcp-go's 5s
		}
		if !lost || attempt > 0 {
			return err
		}
	}
}

// sessionLost reports whether err means the session is unusable: the server
// forgot it (404, or a 400 naming it) or the connection or stream closed
// under the call.
func sessionLost(err error) bool {
	var se *SessionError
	switch {
	case errors.As(err, &se), errors.Is(err, transport.ErrSessionTerminated),
		errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF), errors.Is(err, syscall.ECONNRESET):
		return true
	}
	// mcp-go's error for an SSE response stream that ended before the
	// response; it has no sentinel.
	return strings.Contains(err.Error(), "unexpected nil response")
}

// acquire returns a ready pooled session for key, opening one if needed,
// with a reference the caller gives back with release.
func (p *Provider) acquire(ctx context.Context, c *conn, key sessionKey) (*session, error) {
	for tries := 0; ; tries++ {
		now := p.now()
		p.mu.Lock()
		p.sweepLocked(now)
		s, ok := p.sessions[key]
		if !ok || tries > 0 {
			// Open our own, also after a shared open failed (the opener's
			// failure may have been its own deadline); then it is pooled
			// only if no other caller has pooled one meanwhile.
			s = &session{key: key, ready: make(chan struct{}), lastUsed: now, refs: 1}
			if !ok && p.evictLocked() {
				p.sessions[key] = s
				s.elem = p.lru.PushFront(s)
			}
			p.mu.Unlock()
			s.c, s.err = p.open(ctx, c)
			close(s.ready)
			if s.err != nil {
				p.release(s, false, true)
				return nil, s.err
			}
			return s, nil
		}
		s.refs++
		p.mu.Unlock()
		select {
		case <-s.ready:
		case <-ctx.Done():
			p.release(s, false, false)
			return nil, ctx.Err()
		}
		if s.err == nil {
			return s, nil
		}
		p.release(s, false, false)
	}
}

// release gives back a reference to s. ok refreshes its idle time (a failed
// call must not keep a broken session alive); drop takes it out of the
// pool. The last reference to a session out of the pool closes it.
func (p *Provider) release(s *session, ok, drop bool) {
	p.mu.Lock()
	s.refs--
	if drop {
		p.removeLocked(s)
	} else if ok && s.elem != nil {
		s.lastUsed = p.now()
		p.lru.MoveToFront(s.elem)
	}
	closeIt := s.elem == nil && s.refs == 0 && s.c != nil
	p.mu.Unlock()
	if closeIt {
		go s.c.Close() // a DELETE for stateful servers; off the caller's path
	}
}

// removeLocked takes s out of the pool. It is closed when its last user
// releases it, or now if it has none.
func (p *Provider) removeLocked(s *session) {
	if s.elem == nil {
		return
	}
	p.lru.Remove(s.elem)
	s.elem = nil
	if p.sessions[s.key] == s {
		delete(p.sessions, s.key)
	}
	if s.refs == 0 && s.c != nil {
		go s.c.Close()
	}
}

// sweepLocked ends the sessions idle for longer than the TTL. The LRU list
// is in lastUsed order, so only the expired tail is visited.
func (p *Provider) sweepLocked(now time.Time) {
	for e := p.lru.Back(); e != nil; e = p.lru.Back() {
		s := e.Value.(*session)
		if now.Sub(s.lastUsed) <= p.opts.SessionTTL {
			return
		}
		p.removeLocked(s)
	}
}

// evictLocked makes room for one session, evicting the least recently used
// one at the cap. It reports false, so the new session is used for this call
// only, when the pool cannot hold any.
func (p *Provider) evictLocked() bool {
	for len(p.sessions) >= p.opts.MaxSessions {
		e := p.lru.Back()
		if e == nil {
			return false
		}
		p.removeLocked(e.Value.(*session))
	}
	return true
}

// Close ends every pooled session and returns once the idle ones are
// closed (for a stateful server, once it was sent the DELETE that ends the
// session, each bounded by mcp-go's 5s); sessions in use are closed when
// their calls finish. The provider stays usable and opens new sessions on
// demand. The host calls Close at shutdown (tools.Set.Close), after the
// drain, so the servers do not keep sessions nobody will use again.
//
// Sessions opened with the caller's workspace credential close without it
// (no caller is left at shutdown), so a server that requires it for the
// DELETE keeps such a session until its own idle timeout.
func (p *Provider) Close() error {
	p.mu.Lock()
	var idle []*mcpclient.Client
	for e := p.lru.Back(); e != nil; e = p.lru.Back() {
		s := e.Value.(*session)
		if s.refs == 0 && s.c != nil {
			// Out of the pool by hand, to close it here rather than in
			// removeLocked's goroutine.
			p.lru.Remove(e)
			s.elem = nil
			delete(p.sessions, s.key)
			idle = append(idle, s.c)
			continue
		}
		p.removeLocked(s)
	}
	p.mu.Unlock()
	var wg sync.WaitGroup
	for _, c := range idle {
		wg.Go(func() { c.Close() })
	}
	wg.Wait()
	return nil
}

var quiet = slog.New(slog.DiscardHandler)

// open starts and initializes a session with ctx (whose credential signs the
// workspace's requests).
func (p *Provider) open(ctx context.Context, c *conn) (*mcpclient.Client, error) {
	tr, err := transport.NewStreamableHTTP(c.url, transport.WithHTTPBasicClient(c.hc), transport.WithHTTPLogger(quiet))
	if err != nil {
		return nil, fmt.Errorf("mcp: %w", err)
	}
	mc := mcpclient.NewClient(tr)
	if err := mc.Start(ctx); err != nil {
		return nil, fmt.Errorf("mcp: start: %w", err)
	}
	init := mcp.InitializeRequest{}
	init.Params.ProtocolVersion = p.opts.ProtocolVersion
	init.Params.ClientInfo = mcp.Implementation{Name: "agentrt", Version: "0.1"}
	if _, err := mc.Initialize(ctx, init); err != nil {
		mc.Close()
		return nil, fmt.Errorf("initialize: %w", err)
	}
	return mc, nil
}
