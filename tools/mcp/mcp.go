// Package mcp offers the tools of an MCP server (Databricks managed servers
// for UC functions, Vector Search, Genie, external connections and SQL, or
// any other streamable-HTTP server) to an agent, through mcp-go.
//
// With the workspace credential (the default Auth), every HTTP request of a
// session, initialize and tools/list included, is signed with the bound
// workspace client using the request's context, so a user-bound server sees
// the caller's own token; that credential is only ever sent to the workspace
// host. A server elsewhere is reached through a UC connection or with its own
// Auth (none, a static bearer, OAuth client credentials).
//
// Sessions are pooled per server and verified principal, bounded in number
// and idle time, and heal: a session the server no longer knows is dropped
// and the call retried once on a fresh one.
package mcp

import (
	"container/list"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/databricks/databricks-sdk-go"
	"github.com/databricks/databricks-sdk-go/apierr"
	mcpclient "github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/mcp"

	"github.com/agentrt/agentrt/agent"
	"github.com/agentrt/agentrt/tools"
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
	// Auth is how requests are authenticated; the zero value is the bound
	// workspace client's credential, which only a workspace URL may use (a
	// full URL whose path is not a managed MCP server path is refused at New).
	Auth Auth
	// SessionTTL is how long an idle session is kept for reuse: a session
	// expires that long after it was opened or last served a call
	// successfully. Zero means 5m; a negative value opens a session per
	// operation.
	SessionTTL time.Duration
	// MaxSessions caps the pooled sessions (one per principal and server);
	// the least recently used is closed to make room. Zero means
	// DefaultMaxSessions.
	MaxSessions int
	// Resources and Scopes add to what the server kind implies.
	Resources []agent.Resource
	Scopes    []string
	// ProtocolVersion pinned at initialize; default 2025-06-18.
	ProtocolVersion string
}

// Provider prepares the tools of one MCP server.
type Provider struct {
	opts   Options
	path   string   // when URL is workspace-relative
	target *url.URL // when URL is absolute
	server Server
	allow  map[string]bool
	now    func() time.Time

	mu       sync.Mutex
	sessions map[sessionKey]*session
	lru      list.List // of *session, most recently used first

	ccMu sync.Mutex
	cc   *ccSource
}

// New validates o and returns a provider.
func New(o Options) (*Provider, error) {
	if o.URL == "" {
		return nil, errors.New("mcp: URL is required")
	}
	p := &Provider{opts: o, sessions: map[sessionKey]*session{}, now: time.Now}
	path := o.URL
	if !strings.HasPrefix(o.URL, "/") {
		u, err := url.Parse(o.URL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, fmt.Errorf("mcp: URL %q must be an http(s) URL or a workspace path", o.URL)
		}
		path = u.Path
		p.target = u
	} else {
		p.path = o.URL
	}
	p.server = ParsePath(path)
	if err := o.Auth.validate(p.target, p.server.Kind); err != nil {
		return nil, err
	}
	if o.SessionTTL == 0 {
		p.opts.SessionTTL = 5 * time.Minute
	}
	if o.MaxSessions <= 0 {
		p.opts.MaxSessions = DefaultMaxSessions
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
// and the managed server's scope. A server with its own Auth implies none,
// only the Secrets API scope when its credential is a secret reference.
func (p *Provider) Requirements() tools.Requirements {
	var r tools.Requirements
	s := p.server
	if p.opts.Auth.kind != authWorkspace {
		s = Server{}
		if p.opts.Auth.secretRef() {
			r.UserScopes = append(r.UserScopes, "workspace.secrets") // read as the caller when user-bound
		}
	}
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
		if s.Kind == KindFunctions {
			r.UserScopes = append(r.UserScopes, FunctionsProbeScope)
		}
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
	if p.opts.Auth.kind != authWorkspace || (p.server.Kind != KindFunctions && p.server.Kind != KindVectorSearch) {
		return req, nil
	}
	c, err := p.connect(ctx, w)
	if err != nil {
		return nil, err
	}
	listed, err := p.listTools(ctx, c)
	if err != nil {
		return nil, err
	}
	typ := agent.Function
	if p.server.Kind == KindVectorSearch {
		typ = agent.VectorSearchIndex
	}
	var out []agent.Resource
	for _, t := range listed {
		out = append(out, agent.Resource{Type: typ, Name: UCName(t.Name)})
	}
	return append(out, p.opts.Resources...), nil
}

// Prepare implements tools.Provider: listing the tools as w's identity is the
// probe (a caller without access gets a permission error); for a UC
// functions server, reading each function as the caller is too, since the
// server lists functions the caller may not execute (probeFunctions). With
// its own Auth, a server needs w only to resolve a secret reference.
func (p *Provider) Prepare(ctx context.Context, w *databricks.WorkspaceClient) ([]agent.Tool, error) {
	c, err := p.connect(ctx, w)
	if err != nil {
		return nil, err
	}
	listed, err := p.listTools(ctx, c)
	if err != nil {
		return nil, err
	}
	offered := listed[:0:0]
	for _, t := range listed {
		if p.allow == nil || p.allow[t.Name] {
			offered = append(offered, t)
		}
	}
	if p.opts.Auth.kind == authWorkspace && p.server.Kind == KindFunctions && len(offered) > 0 {
		if offered, err = p.probeFunctions(ctx, w, offered); err != nil {
			return nil, err
		}
	}
	out := make([]agent.Tool, 0, len(offered))
	for _, t := range offered {
		out = append(out, p.newTool(c, t))
	}
	return out, nil
}

func (p *Provider) listTools(ctx context.Context, c *conn) ([]mcp.Tool, error) {
	var res *mcp.ListToolsResult
	err := p.do(ctx, c, func(c *mcpclient.Client) error {
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

func (p *Provider) newTool(c *conn, t mcp.Tool) *tool {
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
	return &tool{p: p, c: c, remote: t.Name, def: agent.ToolDefinition{Name: name, Description: desc, Parameters: params}}
}

type tool struct {
	p      *Provider
	c      *conn
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
	args, err := callArguments(arguments)
	if err != nil {
		return "", err
	}
	var res *mcp.CallToolResult
	err = t.p.do(ctx, t.c, func(c *mcpclient.Client) error {
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

// callArguments checks that a model's arguments are a JSON object (or
// nothing) and passes them on as they are: decoding them into a map only for
// mcp-go to encode the map again cost a call about 20 allocations.
func callArguments(arguments string) (any, error) {
	a := strings.TrimSpace(arguments)
	if a == "" || a == "null" {
		return nil, nil
	}
	if a[0] == '{' && json.Valid([]byte(a)) {
		return json.RawMessage(a), nil
	}
	var m map[string]any
	if err := json.Unmarshal([]byte(a), &m); err != nil {
		return nil, fmt.Errorf("invalid arguments: %w", err)
	}
	return nil, errors.New("invalid arguments: want a JSON object")
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
