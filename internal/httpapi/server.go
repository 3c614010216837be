// Package httpapi is the HTTP surface of the agentrt host: the gin engine
// that answers the Responses API (OpenAI and MLflow dialects, JSON and SSE)
// for one agent, with the limits, error bodies and panic recovery around it.
// It prepares each request's agent.Env through Preparers, then runs the agent.
package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/agentrt/agentrt/agent"
	"github.com/agentrt/agentrt/internal/manifest"
	"github.com/agentrt/agentrt/internal/store"
	"github.com/agentrt/agentrt/internal/telemetry"
)

// Preparer fills fields of the request environment before the agent runs
// (caller identity, clients, tools) and may return a derived context (for
// example one carrying the caller's credential). An error that is an
// *httperr.Error is answered with its status; any other error is a 500.
type Preparer interface {
	Prepare(ctx context.Context, r *http.Request, env *agent.Env) (context.Context, error)
}

// PreparerFunc adapts a function to Preparer.
type PreparerFunc func(ctx context.Context, r *http.Request, env *agent.Env) (context.Context, error)

// Prepare calls f.
func (f PreparerFunc) Prepare(ctx context.Context, r *http.Request, env *agent.Env) (context.Context, error) {
	return f(ctx, r, env)
}

// Options configure a Server.
type Options struct {
	Agent     agent.Agent // required; if it is also an agent.StreamAgent it streams natively
	AgentName string      // reported by /agent/info and used as the response model by default
	Manifest  agent.Manifest
	Preparers []Preparer // run in order before every agent call
	Limits    Limits
	Logger    *slog.Logger // default slog.Default()
	Dev       bool         // copied into every agent.Env
	// Telemetry, when set (telemetry.NewServer, after telemetry.Setup),
	// gives every request a server span and the HTTP server metrics.
	Telemetry *telemetry.Server
	CORS      *CORS // cross-origin browser access (cors.go); nil: none

	// Store keeps responses, conversations and background runs
	// (state.go); nil means store.Off(): stateless. The caller closes it.
	Store store.Store
	// StatePreparers establish the caller on the stored-response routes
	// (GET/DELETE /v1/responses/{id}, input_items, cancel), which run no
	// agent: identity, not tools. Nil means Preparers.
	StatePreparers []Preparer
}

// Server serves one agent.
type Server struct {
	agent     agent.Agent
	streamer  agent.StreamAgent
	name      string
	preparers []Preparer
	limits    Limits
	log       *slog.Logger
	dev       bool
	sem       chan struct{}
	agents    agentMetrics
	info      []byte
	engine    *gin.Engine
	tel       *telemetry.Server
	cors      *CORS
	accepts   map[string]bool // request members the agent acts on (agent.Accepter)

	store          store.Store
	statePreparers []Preparer
	bg             runs // background runs (background.go)

	callers chan *runCall // to idle caller goroutines (admit.go); unbuffered
}

// New builds the server and its gin engine (in release mode).
func New(opts Options) (*Server, error) {
	if opts.Agent == nil {
		return nil, errors.New("httpapi: Options.Agent is required")
	}
	if err := manifest.Validate(opts.Manifest); err != nil {
		return nil, err
	}
	s := &Server{
		agent:     opts.Agent,
		name:      opts.AgentName,
		preparers: append([]Preparer(nil), opts.Preparers...),
		limits:    opts.Limits.withDefaults(),
		log:       opts.Logger,
		dev:       opts.Dev,
		tel:       opts.Telemetry,
		cors:      opts.CORS,
		agents:    newAgentMetrics(),
		store:     opts.Store,
		callers:   make(chan *runCall),
	}
	if s.store == nil {
		s.store = store.Off()
	}
	s.statePreparers = s.preparers
	if opts.StatePreparers != nil {
		s.statePreparers = append([]Preparer(nil), opts.StatePreparers...)
	}
	if s.name == "" {
		s.name = "agent"
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	s.streamer, _ = opts.Agent.(agent.StreamAgent)
	s.accepts = accepted(opts.Agent)
	if n := s.limits.MaxConcurrency; n > 0 {
		s.sem = make(chan struct{}, n)
	}
	info, err := json.Marshal(map[string]any{
		"name":      s.name,
		"use_case":  "agent",
		"agent_api": "responses",
		"streaming": true,
		"manifest":  manifest.MLflow(opts.Manifest),
	})
	if err != nil {
		return nil, err
	}
	s.info = info

	s.engine = s.routes()
	return s, nil
}

// Handler is the server's http.Handler.
func (s *Server) Handler() http.Handler { return s.engine }

// Engine exposes the gin engine so that the host can mount more routes
// (metrics, dev console) next to the agent's.
func (s *Server) Engine() *gin.Engine { return s.engine }
