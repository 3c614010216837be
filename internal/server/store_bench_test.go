package server_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/agentrt/agentrt/agent"
	"github.com/agentrt/agentrt/examples/echo"
	"github.com/agentrt/agentrt/internal/httperr"
	"github.com/agentrt/agentrt/internal/pgtest"
	"github.com/agentrt/agentrt/internal/server"
	"github.com/agentrt/agentrt/internal/store"
)

// BenchmarkStoreRequest is the latency the response store adds to one
// non-streaming request through the whole host (identity, agent, encode):
// store:false against store:true (the response, its input and output
// written), on each backend, in the same run.
func BenchmarkStoreRequest(b *testing.B) {
	for _, backend := range []string{"memory", "sqlite", "postgres"} {
		b.Run(backend, func(b *testing.B) {
			spec := backend
			switch backend {
			case "sqlite":
				spec = "sqlite:" + filepath.Join(b.TempDir(), "state.db")
			case "postgres":
				spec = pgtest.DB(b)
			}
			st, err := store.Open(context.Background(), spec, store.Options{})
			if err != nil {
				b.Fatal(err)
			}
			defer st.Close()
			h, err := server.New(server.Options{Agent: echo.Agent{}, AgentName: "echo", Logger: quietLog(),
				Preparers: []server.Preparer{tokenIdentity}, Store: st})
			if err != nil {
				b.Fatal(err)
			}
			for _, mode := range []string{"false", "true"} {
				b.Run("store="+mode, func(b *testing.B) {
					body := []byte(`{"model":"echo","store":` + mode + `,"input":[{"role":"user","content":"hello, how are you today?"}]}`)
					b.ReportAllocs()
					for b.Loop() {
						w := httptest.NewRecorder()
						r := httptest.NewRequest(http.MethodPost, "/v1/responses", io.NopCloser(bytes.NewReader(body)))
						r.Header.Set("Content-Type", "application/json")
						r.Header.Set("Authorization", "Bearer alice")
						h.Handler().ServeHTTP(w, r)
						if w.Code != http.StatusOK {
							b.Fatalf("status %d: %s", w.Code, w.Body)
						}
					}
				})
			}
		})
	}
}

// tokenIdentity verifies "Bearer <name>" for alice and bob; anything else
// is refused.
var tokenIdentity = server.PreparerFunc(func(ctx context.Context, r *http.Request, env *agent.Env) (context.Context, error) {
	ids := map[string]string{"alice": "1001", "bob": "1002"}
	tok, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	id, ok := ids[tok]
	if !ok {
		return ctx, httperr.Unauthenticated("credential rejected")
	}
	env.Caller = agent.Caller{Identity: agent.Identity{PrincipalID: id}, Authenticated: true}
	return ctx, nil
})
