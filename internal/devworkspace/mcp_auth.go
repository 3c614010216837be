package devworkspace

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"

	"github.com/agentrt/agentrt/internal/scopes"
)

// Authorization challenges of the MCP endpoints (MCP authorization, RFC
// 6750 §3, RFC 9728 §5.1). Every 401 from a managed server carries
//
//	WWW-Authenticate: Bearer error="invalid_token", error_description="…",
//	    resource_metadata="<base>/.well-known/oauth-protected-resource/api/2.0/mcp/…"
//
// so an MCP client shows why its token was refused instead of starting an
// interactive OAuth flow that the dev workspace cannot complete (it has no
// authorization endpoint). A missing token is reported as invalid_token
// too, which RFC 6750 allows (it only advises against): in the dev loop a
// missing token is a configuration error for the person at the client.
// The metadata document names the workspace's OIDC issuer, whose metadata
// MCP clients find at <issuer>/.well-known/oauth-authorization-server.

const protectedResourcePath = "/.well-known/oauth-protected-resource"

// mcpRoute registers a managed MCP endpoint: authenticated, scope-checked
// and audited like every API route, its 401s with the challenge above. The
// managed servers read the catalog, so it waits for the sample data.
func (ws *Workspace) mcpRoute(pattern string, h http.HandlerFunc) {
	ws.mux.Handle(pattern, challenge(ws.wrap(ws.afterData(h), true), ws.resourceMetadataURL))
}

// resourceMetadataURL is the RFC 9728 metadata URL of the resource r
// addresses: the well-known prefix inserted before its path.
func (ws *Workspace) resourceMetadataURL(r *http.Request) string {
	return ws.baseURL(r) + protectedResourcePath + r.URL.EscapedPath()
}

// handleProtectedResource serves the RFC 9728 metadata of a managed MCP
// server, for the paths that are one.
func (ws *Workspace) handleProtectedResource(w http.ResponseWriter, r *http.Request) {
	path := strings.TrimPrefix(r.URL.Path, protectedResourcePath)
	probe := &http.Request{Method: http.MethodPost, Host: r.Host, URL: &url.URL{Path: path}}
	if _, pattern := ws.mux.Handler(probe); !strings.HasPrefix(pattern, "/api/2.0/mcp/") {
		writeError(w, http.StatusNotFound, "ENDPOINT_NOT_FOUND", "no MCP server at %s", path)
		return
	}
	base := ws.baseURL(r)
	writeJSON(w, http.StatusOK, map[string]any{
		"resource":                 base + (&url.URL{Path: path}).EscapedPath(),
		"authorization_servers":    []string{base + "/oidc"},
		"bearer_methods_supported": []string{"header"},
		"scopes_supported":         scopes.Required(http.MethodPost, path),
		"resource_name":            "Databricks managed MCP server (dev workspace)",
	})
}

// challenge gives every 401 that next answers without a WWW-Authenticate
// header the Bearer invalid_token challenge, its description taken from
// the error body's message, with resource_metadata when metadata is set.
func challenge(next http.Handler, metadata func(*http.Request) string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		cw := &challengeWriter{ResponseWriter: w}
		if metadata != nil {
			cw.metadata = metadata(r)
		}
		next.ServeHTTP(cw, r)
		cw.release("")
	})
}

// challengeWriter holds back a 401's status line until the body's first
// write, whose {"message"} becomes the error_description.
type challengeWriter struct {
	http.ResponseWriter
	metadata string
	held     bool // a 401 waiting for its challenge
	done     bool // the status has been written
}

func (c *challengeWriter) WriteHeader(code int) {
	if c.done {
		return
	}
	if code == http.StatusUnauthorized && c.Header().Get("WWW-Authenticate") == "" {
		c.held = true
		return
	}
	c.done = true
	c.ResponseWriter.WriteHeader(code)
}

func (c *challengeWriter) Write(b []byte) (int, error) {
	if c.held {
		var e errorBody
		_ = json.Unmarshal(b, &e)
		c.release(e.Message)
	}
	c.done = true
	return c.ResponseWriter.Write(b)
}

// release writes a held 401 with its challenge.
func (c *challengeWriter) release(description string) {
	if !c.held {
		return
	}
	c.held, c.done = false, true
	if description == "" {
		description = "the access token is missing, invalid or expired"
	}
	c.Header().Set("WWW-Authenticate", bearerChallenge(description, c.metadata))
	c.ResponseWriter.WriteHeader(http.StatusUnauthorized)
}

func (c *challengeWriter) Flush() {
	c.release("")
	c.done = true
	if f, ok := c.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (c *challengeWriter) Unwrap() http.ResponseWriter { return c.ResponseWriter }

// bearerChallenge is an RFC 6750 invalid_token challenge; description is
// reduced to the characters its quoted string allows.
func bearerChallenge(description, metadata string) string {
	var b strings.Builder
	b.WriteString(`Bearer error="invalid_token", error_description="`)
	n := 0
	for i := 0; i < len(description) && n < 200; i++ {
		switch ch := description[i]; {
		case ch == '"' || ch == '\\':
			b.WriteByte('\'')
		case ch >= 0x20 && ch <= 0x7e:
			b.WriteByte(ch)
		default:
			continue
		}
		n++
	}
	b.WriteByte('"')
	if metadata != "" {
		b.WriteString(`, resource_metadata="`)
		b.WriteString(strings.NewReplacer(`"`, "%22", `\`, "%5C").Replace(metadata))
		b.WriteByte('"')
	}
	return b.String()
}
