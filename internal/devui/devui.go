// Package devui is the dev UI that `serve --dev` serves at /: a page to
// talk to the agent as any mock identity (or a pasted token) and see, for
// each request, who every workspace call ran as, the tools that were skipped
// and why, the trace and the dev workspace's audit entries.
//
// The page is plain HTML, CSS and JavaScript embedded in the binary (no
// build step, no network). Besides the page, the package serves the JSON the
// page reads and the agent's routes do not give: what each identity may use
// (GET /dev/identities, GET /dev/access) and what a request did
// (GET /dev/requests/:id). It is linked only into dev builds (runtime/cli's
// devui.go); a production build (-tags agentrt_nodev) leaves it out.
package devui

import (
	"cmp"
	"context"
	"embed"
	"errors"
	"io/fs"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/agentrt/agentrt/agent"
	"github.com/agentrt/agentrt/internal/devworkspace"
	"github.com/agentrt/agentrt/internal/discover"
	"github.com/agentrt/agentrt/internal/httpapi"
	"github.com/agentrt/agentrt/internal/httperr"
	"github.com/agentrt/agentrt/internal/identity"
	"github.com/agentrt/agentrt/tools"
)

//go:embed static
var static embed.FS

// traceWait bounds how long GET /dev/requests/:id waits for a request that
// is still finishing (its server span ends after the last byte is written).
const traceWait = time.Second

// Options configure a UI. Identity and Workspace are required.
type Options struct {
	AgentName string
	// Agent is the served agent: its tools (tools.Declarer) are prepared
	// for each identity to show what that identity may use.
	Agent agent.Agent
	// Manifest is the agent's effective manifest (resources and user API
	// scopes, with its tools' requirements merged).
	Manifest agent.Manifest
	// Identity is the host's identity preparer (workspace.Workspace): it
	// turns X-Dev-User or a bearer token into the caller and its clients,
	// exactly as for an agent request.
	Identity httpapi.Preparer
	// Users are the mock identities (X-Dev-User values), e.g. alice, bob.
	Users []string
	// Workspace is the dev workspace whose audit log shows, per request,
	// the principal of every workspace call.
	Workspace AuditLog
	// Recorder holds the spans of recent requests; nil shows no trace.
	Recorder *Recorder
}

// AuditLog is a dev workspace's audit log, oldest first: a
// *devworkspace.Workspace, or internal/devmode's Dev, which also reads that of
// a dev workspace in another process.
type AuditLog interface {
	Audit() []devworkspace.AuditEntry
}

// UI serves the dev UI.
type UI struct {
	o     Options
	set   *tools.Set
	files http.Handler
}

// New checks o; it does no I/O.
func New(o Options) (*UI, error) {
	if o.Identity == nil || o.Workspace == nil {
		return nil, errors.New("devui: Options.Identity and Options.Workspace are required")
	}
	sub, err := fs.Sub(static, "static")
	if err != nil {
		return nil, err
	}
	u := &UI{o: o, files: http.StripPrefix("/dev/ui/", http.FileServerFS(sub))}
	u.o.Users = slices.Sorted(slices.Values(o.Users))
	if o.Agent != nil {
		if d, ok := discover.As[tools.Declarer](o.Agent); ok {
			u.set = d.Tools()
		}
	}
	return u, nil
}

// Register adds the UI's routes to e, the host's engine, so that they share
// its request ids, spans and dev-mode Host/Origin check.
func (u *UI) Register(e *gin.Engine) {
	e.GET("/", u.index)
	e.GET("/dev/ui/*file", func(c *gin.Context) { u.files.ServeHTTP(c.Writer, c.Request) })
	e.GET("/dev/identities", u.identities)
	e.GET("/dev/access", u.access)
	e.GET("/dev/requests/:id", u.request)
}

func (u *UI) index(c *gin.Context) {
	b, err := static.ReadFile("static/index.html")
	if err != nil {
		httperr.Internal("devui: index.html is missing").Write(c.Writer)
		return
	}
	h := c.Writer.Header()
	h.Set("Cache-Control", "no-store")
	// Everything the page needs is served here: nothing else may load.
	h.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; base-uri 'none'; frame-ancestors 'none'")
	c.Data(http.StatusOK, "text/html; charset=utf-8", b)
}

// Access is what one caller may use: the tools prepared for it and the
// tools skipped, with the reasons, exactly as a request would get them.
type Access struct {
	Name     string              `json:"name,omitempty"` // the mock identity, "" for a token
	Identity agent.Identity      `json:"identity"`
	Tools    []ToolInfo          `json:"tools"`
	Skipped  []agent.SkippedTool `json:"skipped_tools"`
	// Error is why the caller could not be checked (an unknown token, a
	// required tool that failed); the caller's requests would fail too.
	Error string `json:"error,omitempty"`
}

// ToolInfo names a prepared tool.
type ToolInfo struct {
	Name        string `json:"name"`
	Description string `json:"description,omitempty"`
}

// Resource is a manifest resource with the client it is used with.
type Resource struct {
	Type    string `json:"type"`
	Name    string `json:"name"`
	Binding string `json:"binding"` // "user" (on behalf of the caller) or "system"
}

// identities is GET /dev/identities: the agent, its manifest and, for
// every mock identity, what it may use.
func (u *UI) identities(c *gin.Context) {
	ctx := c.Request.Context()
	out := make([]Access, len(u.o.Users))
	var wg sync.WaitGroup
	for i, name := range u.o.Users {
		wg.Go(func() {
			r := c.Request.Clone(ctx)
			r.Header = http.Header{identity.HeaderDevUser: {name}}
			a, err := u.check(ctx, r)
			if err != nil {
				a.Error = err.Error()
			}
			a.Name = name
			out[i] = a
		})
	}
	wg.Wait()
	res := make([]Resource, 0, len(u.o.Manifest.Resources))
	for _, r := range u.o.Manifest.Resources {
		b := "system"
		if r.OnBehalfOfUser != nil && *r.OnBehalfOfUser {
			b = "user"
		}
		res = append(res, Resource{Type: string(r.Type), Name: r.Name, Binding: b})
	}
	c.JSON(http.StatusOK, gin.H{
		"agent":           cmp.Or(u.o.AgentName, "agent"),
		"resources":       res,
		"user_api_scopes": slices.Concat([]string{}, u.o.Manifest.UserAPIScopes),
		"identities":      out,
	})
}

// access is GET /dev/access: what the credential of this request (a pasted
// bearer token, or X-Dev-User) may use. A refused credential is answered
// with the error an agent request would get.
func (u *UI) access(c *gin.Context) {
	a, err := u.check(c.Request.Context(), c.Request)
	var he *httperr.Error
	if errors.As(err, &he) {
		he.Write(c.Writer)
		return
	}
	if err != nil {
		a.Error = err.Error()
	}
	c.JSON(http.StatusOK, a)
}

// check runs the host's identity preparer and then the agent's tool set
// for the caller of r, as the host does before an agent call.
func (u *UI) check(ctx context.Context, r *http.Request) (Access, error) {
	a := Access{Tools: []ToolInfo{}, Skipped: []agent.SkippedTool{}}
	env := &agent.Env{RequestID: agent.FromContext(ctx).RequestID, Dev: true}
	ctx = agent.NewContext(ctx, env)
	ctx, err := u.o.Identity.Prepare(ctx, r, env)
	if err != nil {
		return a, err
	}
	a.Identity, _ = env.Caller.Resolve(ctx) // the verified id is enough if SCIM fails
	if u.set == nil {
		return a, nil
	}
	err = u.set.Prepare(ctx, env)
	for _, t := range env.Tools {
		d := t.Definition()
		a.Tools = append(a.Tools, ToolInfo{Name: d.Name, Description: d.Description})
	}
	a.Skipped = append(a.Skipped, env.Skipped...)
	return a, err
}

// ToolCall is a tool call of a request as the trace and the audit log saw
// it: how long it took and which principals its workspace calls ran as.
type ToolCall struct {
	CallID     string         `json:"call_id,omitempty"`
	Name       string         `json:"name"`
	StartMS    float64        `json:"start_ms"`
	DurationMS float64        `json:"duration_ms"`
	Error      string         `json:"error,omitempty"`
	Principals []string       `json:"principals"`
	Calls      []WorkspaceUse `json:"workspace_calls"`
}

// WorkspaceUse is one workspace API call made during a tool call.
type WorkspaceUse struct {
	Principal string `json:"principal"`
	Method    string `json:"method"`
	Path      string `json:"path"`
	Status    int    `json:"status"`
}

// request is GET /dev/requests/:id: the trace of the request with that
// X-Request-Id, the dev workspace's audit entries it caused, and its tool
// calls joined with both.
func (u *UI) request(c *gin.Context) {
	id := c.Param("id")
	if id == "" || len(id) > 200 {
		httperr.BadRequest("id", "want the X-Request-Id of a request").Write(c.Writer)
		return
	}
	var audit []devworkspace.AuditEntry
	for _, e := range u.o.Workspace.Audit() {
		if e.RequestID == id {
			audit = append(audit, e)
		}
	}
	var spans []Span
	traced := false
	if u.o.Recorder != nil {
		ctx, cancel := context.WithTimeout(c.Request.Context(), traceWait)
		spans, traced = u.o.Recorder.Trace(ctx, id)
		cancel()
	}
	if !traced && len(audit) == 0 {
		httperr.NotFound("no recent request has id " + id + " (the dev UI keeps the last 200)").Write(c.Writer)
		return
	}
	if spans == nil {
		spans = []Span{}
	}
	if audit == nil {
		audit = []devworkspace.AuditEntry{}
	}
	c.JSON(http.StatusOK, gin.H{
		"request_id": id,
		"spans":      spans,
		"audit":      audit,
		"tool_calls": toolCalls(spans, audit),
	})
}

// toolCalls joins each tool.call span with the audit entries recorded
// while it ran: the dev workspace runs on this machine, so the clocks agree.
func toolCalls(spans []Span, audit []devworkspace.AuditEntry) []ToolCall {
	out := []ToolCall{}
	for _, s := range spans {
		if s.Name != "tool.call" {
			continue
		}
		tc := ToolCall{CallID: s.Attributes["gen_ai.tool.call.id"], Name: s.Attributes["gen_ai.tool.name"],
			StartMS: s.StartMS, DurationMS: s.DurationMS, Error: s.Error, Principals: []string{}, Calls: []WorkspaceUse{}}
		for _, e := range audit {
			if e.Time.Before(s.start) || e.Time.After(s.end) {
				continue
			}
			p := cmp.Or(e.Principal, "(anonymous)")
			tc.Calls = append(tc.Calls, WorkspaceUse{Principal: p, Method: e.Method, Path: e.Path, Status: e.Status})
			if !slices.Contains(tc.Principals, p) {
				tc.Principals = append(tc.Principals, p)
			}
		}
		out = append(out, tc)
	}
	return out
}
