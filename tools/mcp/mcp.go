// Package mcp offers the tools of an MCP server (Databricks managed servers
// for UC functions, Vector Search, Genie, external connections and SQL, or
// any other streamable-HTTP server) to an agent, through mcp-go.
//
// Every HTTP request of a session, initialize and tools/list included, is
// signed with the bound workspace client using the request's context, so a
// user-bound server sees the caller's own token; sessions are reused per
// server and principal for a TTL instead of being opened for every call.
package mcp

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/databricks/databricks-sdk-go"
	"github.com/databricks/databricks-sdk-go/apierr"
	mcpclient "github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"

	"github.com/agentrt/agentrt/agent"
	"github.com/agentrt/agentrt/tools"
	"github.com/agentrt/agentrt/tools/internal/wsapi"
)

// Paths of the Databricks managed MCP servers, relative to the workspace.
func FunctionsPath(catalog, schema string) string {
	return "/api/2.0/mcp/functions/" + catalog + "/" + schema
}
func VectorSearchPath(catalog, schema string) string {
	return "/api/2.0/mcp/vector-search/" + catalog + "/" + schema
}
func GeniePath(spaceID string) string       { return "/api/2.0/mcp/genie/" + spaceID }
func ExternalPath(connection string) string { return "/api/2.0/mcp/external/" + connection }
func SQLPath() string                       { return "/api/2.0/mcp/sql" }
func join(host, path string) string         { return strings.TrimRight(host, "/") + path }
func Functions(host, catalog, schema string) string {
	return join(host, FunctionsPath(catalog, schema))
}
func VectorSearch(host, catalog, schema string) string {
	return join(host, VectorSearchPath(catalog, schema))
}
func Genie(host, spaceID string) string       { return join(host, GeniePath(spaceID)) }
func External(host, connection string) string { return join(host, ExternalPath(connection)) }
func SQL(host string) string                  { return join(host, SQLPath()) }

// Kind is the kind of a managed server, known from its path.
type Kind string

const (
	KindFunctions    Kind = "functions"
	KindVectorSearch Kind = "vector-search"
	KindGenie        Kind = "genie"
	KindExternal     Kind = "external"
	KindSQL          Kind = "sql"
	KindCustom       Kind = "" // not a Databricks managed server
)

var (
	reTwo = regexp.MustCompile(`^/api/2\.0/mcp/(functions|vector-search)/([^/]+)/([^/]+)(?:/([^/]+))?$`)
	reOne = regexp.MustCompile(`^/api/2\.0/mcp/(genie|external)/([^/]+)$`)
	reSQL = regexp.MustCompile(`^/api/2\.0/mcp/sql$`)
)

// Server describes a managed server path: its kind and the UC names in it.
type Server struct {
	Kind                Kind
	Catalog, Schema     string
	Object              string // function or index name for single-object URLs
	SpaceID, Connection string
}

// ParsePath recognises a Databricks managed MCP server path.
func ParsePath(path string) Server {
	if m := reTwo.FindStringSubmatch(path); m != nil {
		return Server{Kind: Kind(m[1]), Catalog: m[2], Schema: m[3], Object: m[4]}
	}
	if m := reOne.FindStringSubmatch(path); m != nil {
		if m[1] == "genie" {
			return Server{Kind: KindGenie, SpaceID: m[2]}
		}
		return Server{Kind: KindExternal, Connection: m[2]}
	}
	if reSQL.MatchString(path) {
		return Server{Kind: KindSQL}
	}
	return Server{}
}

// UCName maps a managed server's tool name (catalog__schema__name) back to
// its Unity Catalog name (catalog.schema.name).
func UCName(tool string) string { return strings.ReplaceAll(tool, "__", ".") }

// Options configure an MCP provider.
type Options struct {
	// URL of the server. A path (starting with "/") is resolved against the
	// bound workspace client's host, so agents need no hard-coded host.
	URL string
	// Name for logs and skip reports; default: the server path.
	Name string
	// Tools, when set, limits the offered tools to these names (server tool
	// names, or UC names for functions and vector-search servers); for those
	// servers they also become the declared resources.
	Tools []string
	// Prefix is prepended to tool names as "<prefix>__<tool>".
	Prefix string
	// SessionTTL is how long an idle session is kept for reuse. Zero means
	// 5m; a negative value opens a session per operation.
	SessionTTL time.Duration
	// Resources and Scopes add to what the server kind implies.
	Resources []agent.Resource
	Scopes    []string
	// ProtocolVersion pinned at initialize; default 2025-06-18.
	ProtocolVersion string
}

// Provider prepares the tools of one MCP server.
type Provider struct {
	opts   Options
	path   string // when URL is workspace-relative
	server Server
	allow  map[string]bool

	mu       sync.Mutex
	sessions map[sessionKey]*session
}

// New validates o and returns a provider.
func New(o Options) (*Provider, error) {
	if o.URL == "" {
		return nil, errors.New("mcp: URL is required")
	}
	p := &Provider{opts: o, sessions: map[sessionKey]*session{}}
	path := o.URL
	if !strings.HasPrefix(o.URL, "/") {
		u, err := url.Parse(o.URL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, fmt.Errorf("mcp: URL %q must be an http(s) URL or a workspace path", o.URL)
		}
		path = u.Path
	} else {
		p.path = o.URL
	}
	p.server = ParsePath(path)
	if o.SessionTTL == 0 {
		p.opts.SessionTTL = 5 * time.Minute
	}
	if o.ProtocolVersion == "" {
		p.opts.ProtocolVersion = "2025-06-18"
	}
	if o.Name == "" {
		p.opts.Name = path
	}
	if len(o.Tools) > 0 {
		p.allow = map[string]bool{}
		for _, t := range o.Tools {
			p.allow[t] = true
			p.allow[strings.ReplaceAll(t, ".", "__")] = true
		}
	}
	return p, nil
}

// Name implements tools.Namer.
func (p *Provider) Name() string { return p.opts.Name }

// Server returns what the provider knows about its server from the URL.
func (p *Provider) Server() Server { return p.server }

// Requirements implements tools.Provider: the resources the server kind
// implies (a Genie space, a UC connection, the listed functions or indexes)
// and the managed server's scope.
func (p *Provider) Requirements() tools.Requirements {
	var r tools.Requirements
	s := p.server
	switch s.Kind {
	case KindGenie:
		r.Resources = append(r.Resources, agent.Resource{Type: agent.GenieSpace, Name: s.SpaceID})
		r.UserScopes = append(r.UserScopes, "mcp.genie")
	case KindExternal:
		r.Resources = append(r.Resources, agent.Resource{Type: agent.UCConnection, Name: s.Connection})
		r.UserScopes = append(r.UserScopes, "mcp.external")
	case KindFunctions, KindVectorSearch:
		typ, scope := agent.Function, "mcp.functions"
		if s.Kind == KindVectorSearch {
			typ, scope = agent.VectorSearchIndex, "mcp.vectorsearch"
		}
		r.UserScopes = append(r.UserScopes, scope)
		names := p.opts.Tools
		if s.Object != "" {
			names = []string{s.Object}
		}
		for _, n := range names {
			if !strings.Contains(n, ".") && !strings.Contains(n, "__") {
				n = s.Catalog + "." + s.Schema + "." + n
			}
			r.Resources = append(r.Resources, agent.Resource{Type: typ, Name: UCName(n)})
		}
	case KindSQL:
		r.UserScopes = append(r.UserScopes, "mcp.sql")
	}
	r.Resources = append(r.Resources, p.opts.Resources...)
	r.UserScopes = append(r.UserScopes, p.opts.Scopes...)
	return r
}

// Resources lists the server's tools as w's identity and maps them to the
// resources they stand for (the Python client's get_databricks_resources).
func (p *Provider) Resources(ctx context.Context, w *databricks.WorkspaceClient) ([]agent.Resource, error) {
	req := p.Requirements().Resources
	if p.server.Kind != KindFunctions && p.server.Kind != KindVectorSearch {
		return req, nil
	}
	list, err := p.listTools(ctx, w)
	if err != nil {
		return nil, err
	}
	typ := agent.Function
	if p.server.Kind == KindVectorSearch {
		typ = agent.VectorSearchIndex
	}
	var out []agent.Resource
	for _, t := range list {
		out = append(out, agent.Resource{Type: typ, Name: UCName(t.Name)})
	}
	return append(out, p.opts.Resources...), nil
}

// Prepare implements tools.Provider: listing the tools as w's identity is the
// probe (a caller without access gets a permission error).
func (p *Provider) Prepare(ctx context.Context, w *databricks.WorkspaceClient) ([]agent.Tool, error) {
	if w == nil {
		return nil, tools.ErrNoClient
	}
	list, err := p.listTools(ctx, w)
	if err != nil {
		return nil, err
	}
	out := make([]agent.Tool, 0, len(list))
	for _, t := range list {
		if p.allow != nil && !p.allow[t.Name] {
			continue
		}
		out = append(out, p.newTool(w, t))
	}
	return out, nil
}

func (p *Provider) listTools(ctx context.Context, w *databricks.WorkspaceClient) ([]mcp.Tool, error) {
	var res *mcp.ListToolsResult
	err := p.do(ctx, w, func(c *mcpclient.Client) error {
		var err error
		res, err = c.ListTools(ctx, mcp.ListToolsRequest{})
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("mcp %s: list tools: %w", p.opts.Name, err)
	}
	return res.Tools, nil
}

var toolNameRE = regexp.MustCompile(`[^a-zA-Z0-9_-]`)

func (p *Provider) newTool(w *databricks.WorkspaceClient, t mcp.Tool) *tool {
	name := t.Name
	if p.opts.Prefix != "" {
		name = p.opts.Prefix + "__" + name
	}
	name = toolNameRE.ReplaceAllString(name, "_")
	if len(name) > 64 {
		name = name[len(name)-64:]
	}
	desc := t.Description
	if desc == "" {
		desc = "Tool: " + t.Name
	}
	var params json.RawMessage
	if len(t.RawInputSchema) > 0 {
		params = t.RawInputSchema
	} else if b, err := json.Marshal(t.InputSchema); err == nil {
		params = b
	}
	return &tool{p: p, w: w, remote: t.Name, def: agent.ToolDefinition{Name: name, Description: desc, Parameters: params}}
}

type tool struct {
	p      *Provider
	w      *databricks.WorkspaceClient
	remote string
	def    agent.ToolDefinition
}

func (t *tool) Definition() agent.ToolDefinition { return t.def }

// ToolError is a tool call the server answered with isError.
type ToolError struct {
	Tool string
	Text string
}

func (e *ToolError) Error() string { return fmt.Sprintf("tool %s failed: %s", e.Tool, e.Text) }

// Unwrap lets a result that starts with a Databricks error code (as managed
// servers report a missing right: "PERMISSION_DENIED: …") match the SDK's
// sentinel errors, so errors.Is(err, databricks.ErrPermissionDenied) holds.
func (e *ToolError) Unwrap() error {
	code, msg, ok := strings.Cut(e.Text, ": ")
	if !ok || code == "" || strings.ToUpper(code) != code || strings.ContainsAny(code, " \n") {
		return nil
	}
	status := map[string]int{"PERMISSION_DENIED": 403, "UNAUTHENTICATED": 401, "RESOURCE_DOES_NOT_EXIST": 404, "NOT_FOUND": 404}[code]
	if status == 0 {
		return nil
	}
	return &apierr.APIError{ErrorCode: code, StatusCode: status, Message: msg}
}

func (t *tool) Call(ctx context.Context, arguments string) (string, error) {
	var args map[string]any
	if strings.TrimSpace(arguments) != "" {
		if err := json.Unmarshal([]byte(arguments), &args); err != nil {
			return "", fmt.Errorf("invalid arguments: %w", err)
		}
	}
	var res *mcp.CallToolResult
	err := t.p.do(ctx, t.w, func(c *mcpclient.Client) error {
		req := mcp.CallToolRequest{}
		req.Params.Name = t.remote
		req.Params.Arguments = args
		var err error
		res, err = c.CallTool(ctx, req)
		return err
	})
	if err != nil {
		return "", fmt.Errorf("mcp %s: call %s: %w", t.p.opts.Name, t.remote, err)
	}
	text := resultText(res)
	if res.IsError {
		return "", &ToolError{Tool: t.remote, Text: text}
	}
	return text, nil
}

// resultText joins text contents; other content kinds are passed as JSON.
func resultText(res *mcp.CallToolResult) string {
	var parts []string
	for _, c := range res.Content {
		if tc, ok := mcp.AsTextContent(c); ok {
			parts = append(parts, tc.Text)
			continue
		}
		if b, err := json.Marshal(c); err == nil {
			parts = append(parts, string(b))
		}
	}
	if len(parts) == 0 && res.StructuredContent != nil {
		if b, err := json.Marshal(res.StructuredContent); err == nil {
			parts = append(parts, string(b))
		}
	}
	return strings.Join(parts, "\n")
}

// Sessions.

type sessionKey struct {
	url       string
	client    *databricks.WorkspaceClient
	principal string
}

type session struct {
	ready    chan struct{}
	c        *mcpclient.Client
	err      error
	lastUsed time.Time
}

var quiet = slog.New(slog.DiscardHandler)

// do runs fn on a session for (server, client, principal), opening one when
// needed, and retries once on a fresh session when the server has ended the
// old one.
func (p *Provider) do(ctx context.Context, w *databricks.WorkspaceClient, fn func(*mcpclient.Client) error) error {
	u := p.opts.URL
	if p.path != "" {
		host, err := wsapi.Host(w)
		if err != nil {
			return err
		}
		u = host + p.path
	}
	if p.opts.SessionTTL < 0 {
		c, err := p.open(ctx, w, u)
		if err != nil {
			return err
		}
		defer c.Close()
		return fn(c)
	}
	key := sessionKey{url: u, client: w, principal: agent.EnvFrom(ctx).Caller.PrincipalID}
	for attempt := 0; ; attempt++ {
		s, err := p.session(ctx, w, key)
		if err != nil {
			return err
		}
		err = fn(s.c)
		if err == nil || attempt > 0 || !sessionGone(err) {
			return err
		}
		p.drop(key, s)
	}
}

func sessionGone(err error) bool {
	return errors.Is(err, transport.ErrSessionTerminated)
}

func (p *Provider) session(ctx context.Context, w *databricks.WorkspaceClient, key sessionKey) (*session, error) {
	now := time.Now()
	p.mu.Lock()
	p.sweepLocked(now)
	s, ok := p.sessions[key]
	if !ok {
		s = &session{ready: make(chan struct{}), lastUsed: now}
		p.sessions[key] = s
		p.mu.Unlock()
		s.c, s.err = p.open(ctx, w, key.url)
		if s.err != nil {
			p.mu.Lock()
			if p.sessions[key] == s {
				delete(p.sessions, key)
			}
			p.mu.Unlock()
		}
		close(s.ready)
		return s, s.err
	}
	s.lastUsed = now
	p.mu.Unlock()
	select {
	case <-s.ready:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	if s.err != nil {
		// Opened by a concurrent caller that failed; try on our own.
		return p.session(ctx, w, key)
	}
	return s, nil
}

func (p *Provider) drop(key sessionKey, s *session) {
	p.mu.Lock()
	if p.sessions[key] == s {
		delete(p.sessions, key)
	}
	p.mu.Unlock()
	go s.c.Close()
}

func (p *Provider) sweepLocked(now time.Time) {
	for k, s := range p.sessions {
		select {
		case <-s.ready:
		default:
			continue
		}
		if now.Sub(s.lastUsed) > p.opts.SessionTTL {
			delete(p.sessions, k)
			if s.c != nil {
				go s.c.Close()
			}
		}
	}
}

// Close ends every pooled session.
func (p *Provider) Close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	for k, s := range p.sessions {
		delete(p.sessions, k)
		select {
		case <-s.ready:
			if s.c != nil {
				s.c.Close()
			}
		default:
		}
	}
	return nil
}

func (p *Provider) open(ctx context.Context, w *databricks.WorkspaceClient, u string) (*mcpclient.Client, error) {
	hc, err := wsapi.HTTPClient(w, nil)
	if err != nil {
		return nil, err
	}
	tr, err := transport.NewStreamableHTTP(u, transport.WithHTTPBasicClient(hc), transport.WithHTTPLogger(quiet))
	if err != nil {
		return nil, fmt.Errorf("mcp: %w", err)
	}
	c := mcpclient.NewClient(tr)
	if err := c.Start(ctx); err != nil {
		return nil, fmt.Errorf("mcp: start: %w", err)
	}
	init := mcp.InitializeRequest{}
	init.Params.ProtocolVersion = p.opts.ProtocolVersion
	init.Params.ClientInfo = mcp.Implementation{Name: "agentrt", Version: "0.1"}
	if _, err := c.Initialize(ctx, init); err != nil {
		c.Close()
		return nil, fmt.Errorf("initialize: %w", err)
	}
	return c, nil
}
