// Package hostcheck is the DNS-rebinding defence of the loopback dev servers
// (`serve --dev` and the dev workspace). Their tokens and mock identities are
// public, so listening on loopback protects nothing once a web page rebinds
// its own name to 127.0.0.1, or simply posts to localhost from the browser.
// A request must therefore name a loopback host (or an allowed one) in Host,
// and a browser request must come from a loopback (or allowed) Origin.
//
// Loopback is localhost, *.localhost, 127.0.0.0/8 and ::1, with any port.
// Each server writes the refusal (403) in its own error body.
package hostcheck

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
)

// IsLoopbackIP reports whether host (no port; brackets and a zone are
// accepted) is a literal loopback address.
func IsLoopbackIP(host string) bool {
	ip, err := netip.ParseAddr(strings.TrimSuffix(strings.TrimPrefix(host, "["), "]"))
	return err == nil && ip.IsLoopback()
}

// IsLoopbackHost reports whether host (no port) names loopback: localhost,
// a *.localhost name (RFC 6761; browsers resolve them to loopback without
// DNS) or a loopback address. Case and a trailing dot are ignored.
func IsLoopbackHost(host string) bool {
	h := normalize(host)
	return h == "localhost" || strings.HasSuffix(h, ".localhost") || IsLoopbackIP(h)
}

// normalize lower-cases a host name and drops its trailing dot, the forms
// under which the same name can arrive.
func normalize(host string) string {
	host = strings.TrimSuffix(host, ".")
	for i := 0; i < len(host); i++ {
		if c := host[i]; 'A' <= c && c <= 'Z' {
			return strings.ToLower(host)
		}
	}
	return host
}

// hostOf is the host part of a Host header value (host, host:port,
// [v6]:port); a value that does not split is taken whole.
func hostOf(hostport string) string {
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		return h
	}
	return strings.TrimSuffix(strings.TrimPrefix(hostport, "["), "]")
}

// Policy decides which requests a dev server answers: loopback ones, plus
// those naming an allowed host. The zero value and nil allow loopback only.
type Policy struct {
	hosts   map[string]struct{}
	origins map[string]struct{} // exact Origin values allowed besides (WithOrigins)
	any     bool                // "*": every host, i.e. no defence
}

// Split reads a comma-separated list of host names (a flag's value),
// dropping blanks.
func Split(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

// New returns the policy allowing loopback and the given host names or
// addresses (without port; "*" allows any host and turns the defence off).
func New(allow []string) (*Policy, error) {
	p := &Policy{}
	var errs []error
	for _, a := range allow {
		a = strings.TrimSpace(a)
		switch {
		case a == "":
			continue
		case a == "*":
			p.any = true
			continue
		}
		h := normalize(strings.TrimSuffix(strings.TrimPrefix(a, "["), "]"))
		if err := validName(h); err != nil {
			errs = append(errs, fmt.Errorf("allowed host %q: %w", a, err))
			continue
		}
		if p.hosts == nil {
			p.hosts = map[string]struct{}{}
		}
		p.hosts[h] = struct{}{}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return p, nil
}

// validName accepts an IP address or a DNS name (letters, digits, '-', '_',
// dots). A port, a URL or a boolean (the old form of the allow-remote
// flags) is refused with the reason.
func validName(h string) error {
	if _, err := netip.ParseAddr(h); err == nil {
		return nil
	}
	if _, err := strconv.ParseBool(h); err == nil {
		return errors.New("want host names (comma-separated), or * for any host, not a boolean")
	}
	if strings.Contains(h, "://") {
		return errors.New("want a host name, not a URL")
	}
	if _, _, err := net.SplitHostPort(h); err == nil {
		return errors.New("want a host name without a port (any port is allowed)")
	}
	for i := 0; i < len(h); i++ {
		switch c := h[i]; {
		case 'a' <= c && c <= 'z', '0' <= c && c <= '9', c == '-', c == '_', c == '.':
		default:
			return fmt.Errorf("not a host name or IP address (character %q)", c)
		}
	}
	if len(h) > 253 {
		return errors.New("host name too long")
	}
	return nil
}

// WithOrigins returns a copy of p that also accepts a request carrying
// one of origins, compared exactly with the Origin header (browsers
// serialize it as scheme://host[:port], lower case, no default port): the
// origins the host's CORS policy lists, which its operator has chosen to
// trust. The Host check is unchanged.
func (p *Policy) WithOrigins(origins ...string) *Policy {
	q := &Policy{}
	if p != nil {
		*q = *p
	}
	m := make(map[string]struct{}, len(q.origins)+len(origins))
	for o := range q.origins {
		m[o] = struct{}{}
	}
	for _, o := range origins {
		m[o] = struct{}{}
	}
	q.origins = m
	return q
}

// allows reports whether host (no port) is loopback or allowed.
func (p *Policy) allows(host string) bool {
	if IsLoopbackHost(host) {
		return true
	}
	if p == nil {
		return false
	}
	if p.any {
		return true
	}
	_, ok := p.hosts[normalize(host)]
	return ok
}

// Check returns "" when r may be served, else why it is refused: its Host
// is neither loopback nor allowed, or it carries an Origin (a browser's
// cross-origin or non-GET request) that is neither.
func (p *Policy) Check(r *http.Request) string {
	if !p.allows(hostOf(r.Host)) {
		return fmt.Sprintf("Host %q is not a loopback host: this dev server answers only localhost, *.localhost, 127.0.0.0/8 and [::1] (DNS-rebinding defence)%s", clip(r.Host), hint)
	}
	for _, o := range r.Header.Values("Origin") {
		if !p.allowsOrigin(o) {
			return fmt.Sprintf("Origin %q is not a loopback origin: this dev server refuses cross-site browser requests%s", clip(o), hint)
		}
	}
	return ""
}

// allowsOrigin reads a serialized origin (scheme://host[:port], RFC 6454);
// "null" (sandboxed frames, file: pages), other schemes and anything with a
// path or user info are refused.
func (p *Policy) allowsOrigin(origin string) bool {
	if p != nil {
		if _, ok := p.origins[origin]; ok {
			return true
		}
	}
	rest, ok := strings.CutPrefix(origin, "http://")
	if !ok {
		if rest, ok = strings.CutPrefix(origin, "https://"); !ok {
			return false
		}
	}
	if rest == "" || strings.ContainsAny(rest, "/?#@") {
		return false
	}
	return p.allows(hostOf(rest))
}

// hint says how to allow more names, in both commands that start a dev
// server.
const hint = "; allow more host names with serve --dev-allow-remote or devworkspace -allow-remote"

// clip bounds an attacker-chosen header value quoted in an error message.
func clip(s string) string {
	const max = 100
	if len(s) > max {
		return s[:max] + "…"
	}
	return s
}

// Handler serves next only the requests p accepts; the others get
// refuse(w, r, reason), which must write the server's own 403 body.
func Handler(p *Policy, next http.Handler, refuse func(w http.ResponseWriter, r *http.Request, reason string)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if reason := p.Check(r); reason != "" {
			refuse(w, r, reason)
			return
		}
		next.ServeHTTP(w, r)
	})
}
