package httpapi

// Cross-origin access for browser clients (serve --cors-origins, and the
// loopback origins of --dev): the OpenAI JavaScript client with
// dangerouslyAllowBrowser and the AI SDK call the host straight from a page.

import (
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/agentrt/agentrt/internal/hostcheck"
	"github.com/agentrt/agentrt/internal/httperr"
)

// CORS is the cross-origin policy of the host. A browser request whose
// Origin is allowed gets that exact origin back in
// Access-Control-Allow-Origin with Access-Control-Allow-Credentials, so a
// page may send cookies or an Authorization header; "*" is answered only
// to the wildcard policy, which never allows credentials. A request from
// any other origin gets no CORS headers (the browser withholds the answer),
// and its preflight a 403 saying why.
//
// Preflights (OPTIONS with Origin and Access-Control-Request-Method) are
// answered for every path with 204. The request headers a page may send
// are an allow-list, not whatever the page asks for: those of the OpenAI
// and AI SDK clients and of tracing, but never the identity headers only a
// trusted proxy may set (X-Forwarded-*); X-Dev-User only in dev mode.
//
// A nil *CORS allows no cross-origin access.
type CORS struct {
	origins  map[string]struct{} // exact, as browsers serialize them
	list     []string            // the same, in configuration order
	any      bool                // "*": any origin, never with credentials
	loopback bool                // dev: http(s) loopback origins, any port
	headers  map[string]struct{} // allowed request headers, lower case
}

// CORS headers.
const (
	hOrigin             = "Origin"
	hVary               = "Vary"
	hRequestMethod      = "Access-Control-Request-Method"
	hRequestHeaders     = "Access-Control-Request-Headers"
	hRequestPrivateNet  = "Access-Control-Request-Private-Network"
	hAllowOrigin        = "Access-Control-Allow-Origin"
	hAllowCredentials   = "Access-Control-Allow-Credentials"
	hAllowMethods       = "Access-Control-Allow-Methods"
	hAllowHeaders       = "Access-Control-Allow-Headers"
	hAllowPrivateNet    = "Access-Control-Allow-Private-Network"
	hExposeHeaders      = "Access-Control-Expose-Headers"
	hMaxAge             = "Access-Control-Max-Age"
	corsAllowedMethods  = "GET, POST, DELETE"
	corsPreflightMaxAge = "600" // seconds: a changed policy applies within ten minutes
)

// corsExposed are the response headers a page's script may read: the
// request id every answer carries (the OpenAI client reads it as
// _request_id), the 503's Retry-After (its retry logic), and the openai-*
// headers OpenAI clients look for.
var corsExposed = strings.Join([]string{
	"X-Request-Id", "Retry-After",
	"OpenAI-Processing-Ms", "OpenAI-Version", "OpenAI-Organization", "OpenAI-Project",
}, ", ")

// corsHeaders are the request headers browser clients send beyond the
// CORS-safelisted ones. Any x-stainless-* header (the OpenAI client's
// metadata family, which grows between releases) is allowed as well.
var corsHeaders = []string{
	"authorization", "content-type", "accept", "accept-language", "content-language",
	"openai-beta", "openai-organization", "openai-project", "idempotency-key",
	"user-agent", // the AI SDK sets it; browsers that honour it preflight it
	"x-request-id",
	"traceparent", "tracestate", "baggage", // W3C trace context from browser instrumentation
}

const devUserHeader = "x-dev-user" // the dev workspace's mock identity

// NewCORS returns the policy for origins, each an exact origin
// (scheme://host[:port], no path; https://app.example.com) or "*" for any
// origin without credentials. With dev, loopback origins
// (http or https, localhost, *.localhost, 127.0.0.0/8 or [::1], any port:
// the origins the dev Host/Origin check accepts) are allowed too, with the
// X-Dev-User header. It returns nil when nothing is allowed.
func NewCORS(origins []string, dev bool) (*CORS, error) {
	p := &CORS{loopback: dev, headers: map[string]struct{}{}}
	var bad []string
	for _, o := range origins {
		o = strings.TrimSpace(o)
		switch o {
		case "":
			continue
		case "*":
			p.any = true
			continue
		}
		n, err := NormalizeOrigin(o)
		if err != nil {
			bad = append(bad, err.Error())
			continue
		}
		if p.origins == nil {
			p.origins = map[string]struct{}{}
		}
		if _, dup := p.origins[n]; !dup {
			p.origins[n] = struct{}{}
			p.list = append(p.list, n)
		}
	}
	if len(bad) > 0 {
		return nil, fmt.Errorf("CORS origins: %s", strings.Join(bad, "; "))
	}
	if !p.any && !p.loopback && len(p.origins) == 0 {
		return nil, nil
	}
	for _, h := range corsHeaders {
		p.headers[h] = struct{}{}
	}
	if dev {
		p.headers[devUserHeader] = struct{}{}
	}
	return p, nil
}

// NormalizeOrigin checks an origin from the configuration and returns it as
// a browser serializes it in the Origin header: lower case, no default
// port, no trailing slash.
func NormalizeOrigin(s string) (string, error) {
	u, err := url.Parse(s)
	if err != nil {
		return "", fmt.Errorf("origin %q: %v", s, err)
	}
	scheme := strings.ToLower(u.Scheme)
	if scheme != "http" && scheme != "https" || u.Host == "" {
		return "", fmt.Errorf("origin %q: want http:// or https:// and a host, as in https://app.example.com", s)
	}
	if u.User != nil || u.Opaque != "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.ForceQuery || u.Fragment != "" {
		return "", fmt.Errorf("origin %q: an origin is scheme://host[:port], without path, query or user", s)
	}
	host := strings.ToLower(u.Hostname())
	if ip, err := netip.ParseAddr(host); err == nil {
		if ip.Zone() != "" {
			return "", fmt.Errorf("origin %q: an address with a zone is not an origin", s)
		}
		host = ip.String()
		if ip.Is6() {
			host = "[" + host + "]"
		}
	} else if !validOriginHost(host) {
		return "", fmt.Errorf("origin %q: the host must be an IP address or an ASCII (punycode) name", s)
	}
	port := u.Port()
	if port != "" {
		n, err := strconv.Atoi(port)
		if err != nil || n < 1 || n > 65535 {
			return "", fmt.Errorf("origin %q: bad port", s)
		}
		if scheme == "http" && n == 80 || scheme == "https" && n == 443 {
			port = ""
		} else {
			port = strconv.Itoa(n)
		}
	}
	if port != "" {
		host += ":" + port
	}
	return scheme + "://" + host, nil
}

func validOriginHost(h string) bool {
	if h == "" || len(h) > 253 {
		return false
	}
	for i := 0; i < len(h); i++ {
		switch c := h[i]; {
		case 'a' <= c && c <= 'z', '0' <= c && c <= '9', c == '-', c == '.', c == '_':
		default:
			return false
		}
	}
	return true
}

// Origins are the exact origins the policy lists (not "*" nor the dev
// loopback ones), normalized: the dev Host/Origin check lets them through
// too, so that an origin named in --cors-origins is allowed by both.
func (p *CORS) Origins() []string {
	if p == nil {
		return nil
	}
	return append([]string(nil), p.list...)
}

// Handler is the gin middleware applying p; with a nil p it does nothing.
// It runs before routing's 404/405, so preflights of every path are
// answered.
func (p *CORS) Handler() gin.HandlerFunc {
	if p == nil {
		return func(*gin.Context) {}
	}
	return p.handle
}

// allow returns the Access-Control-Allow-Origin value for origin and
// whether credentials are allowed; "" refuses it.
func (p *CORS) allow(origin string) (string, bool) {
	if _, ok := p.origins[origin]; ok {
		return origin, true
	}
	if p.loopback && isLoopbackOrigin(origin) {
		return origin, true
	}
	if p.any {
		return "*", false
	}
	return "", false
}

// isLoopbackOrigin reports whether origin is http(s)://<loopback>[:port].
func isLoopbackOrigin(origin string) bool {
	rest, ok := strings.CutPrefix(origin, "http://")
	if !ok {
		if rest, ok = strings.CutPrefix(origin, "https://"); !ok {
			return false
		}
	}
	if rest == "" || strings.ContainsAny(rest, "/?#@") {
		return false
	}
	host := rest
	if h, port, err := net.SplitHostPort(rest); err == nil {
		if _, err := strconv.ParseUint(port, 10, 16); err != nil {
			return false
		}
		host = h
	} else if strings.HasPrefix(rest, "[") {
		host = strings.TrimSuffix(strings.TrimPrefix(rest, "["), "]")
	}
	return hostcheck.IsLoopbackHost(host)
}

func (p *CORS) handle(c *gin.Context) {
	r := c.Request
	origins := r.Header.Values(hOrigin)
	if len(origins) == 0 {
		return // not a cross-origin browser request
	}
	h := c.Writer.Header()
	// The answer depends on Origin whether or not it is allowed, so no
	// cache may hand one origin's answer to another.
	h.Add(hVary, hOrigin)
	preflight := r.Method == http.MethodOptions && r.Header.Get(hRequestMethod) != ""
	if preflight {
		h.Add(hVary, hRequestMethod+", "+hRequestHeaders+", "+hRequestPrivateNet)
	}
	allowOrigin, credentials := "", false
	if len(origins) == 1 {
		allowOrigin, credentials = p.allow(origins[0])
	}
	if allowOrigin == "" {
		if preflight {
			corsRefuse(c, fmt.Sprintf("origin %q is not allowed to call this server from a browser; list it in --cors-origins (AGENTRT_CORS_ORIGINS)", corsClip(strings.Join(origins, ", "))))
		}
		// Served, but without CORS headers the browser keeps the answer
		// from the page.
		return
	}
	if preflight {
		p.preflight(c, allowOrigin, credentials)
		return
	}
	h.Set(hAllowOrigin, allowOrigin)
	if credentials {
		h.Set(hAllowCredentials, "true")
	}
	h.Set(hExposeHeaders, corsExposed)
}

// preflight answers an allowed origin's OPTIONS preflight: 204 when the
// method and every requested header are allowed, else 403 naming what is
// not.
func (p *CORS) preflight(c *gin.Context, allowOrigin string, credentials bool) {
	r := c.Request
	method := r.Header.Get(hRequestMethod)
	switch method {
	case http.MethodGet, http.MethodPost, http.MethodDelete:
	default:
		corsRefuse(c, fmt.Sprintf("method %q is not allowed cross-origin (allowed: %s)", corsClip(method), corsAllowedMethods))
		return
	}
	var allowed, refused []string
	for _, v := range r.Header.Values(hRequestHeaders) {
		for _, name := range strings.Split(v, ",") {
			name = strings.ToLower(strings.TrimSpace(name))
			if name == "" {
				continue
			}
			if _, ok := p.headers[name]; ok || strings.HasPrefix(name, "x-stainless-") && isHeaderName(name) {
				allowed = append(allowed, name)
			} else {
				refused = append(refused, name)
			}
		}
	}
	if len(refused) > 0 {
		corsRefuse(c, fmt.Sprintf("request header(s) %s not allowed cross-origin", corsClip(strings.Join(refused, ", "))))
		return
	}
	h := c.Writer.Header()
	h.Set(hAllowOrigin, allowOrigin)
	if credentials {
		h.Set(hAllowCredentials, "true")
	}
	h.Set(hAllowMethods, corsAllowedMethods)
	if len(allowed) > 0 {
		h.Set(hAllowHeaders, strings.Join(allowed, ", "))
	}
	// Chrome asks before a public page reaches a private address; an
	// origin the operator listed may.
	if strings.EqualFold(r.Header.Get(hRequestPrivateNet), "true") {
		h.Set(hAllowPrivateNet, "true")
	}
	h.Set(hMaxAge, corsPreflightMaxAge)
	c.AbortWithStatus(http.StatusNoContent)
}

// isHeaderName reports whether s is an HTTP header name (RFC 9110 token).
func isHeaderName(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0 {
			continue
		}
		return false
	}
	return s != ""
}

func corsRefuse(c *gin.Context, msg string) {
	httperr.PermissionDenied(msg).Write(c.Writer)
	c.Abort()
}

// corsClip bounds a client-chosen value quoted in an error message.
func corsClip(s string) string {
	const max = 200
	if len(s) > max {
		return s[:max] + "…"
	}
	return s
}
