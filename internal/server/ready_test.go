package server_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/agentrt/agentrt/agent"
	"github.com/agentrt/agentrt/internal/server"
)

type answer string

func (a answer) Predict(context.Context, *agent.Request) (*agent.Response, error) {
	return &agent.Response{Output: []agent.Item{agent.TextItem("msg_1", string(a))}}, nil
}

func getReady(t *testing.T, h http.Handler) (int, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/ready", nil))
	return rec.Code, strings.TrimSpace(rec.Body.String())
}

func TestReadiness(t *testing.T) {
	tests := []struct {
		name      string
		waitReady bool
		setReady  []bool
		want      int
		wantBody  string
	}{
		{"ready from the start", false, nil, 200, `{"status":"ready"}`},
		{"waiting for preflight", true, nil, 503, `{"status":"starting"}`},
		{"preflight passed", true, []bool{true}, 200, `{"status":"ready"}`},
		{"marked unready again", false, []bool{false}, 503, `{"status":"starting"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, err := server.New(server.Options{Agent: answer("x"), WaitReady: tt.waitReady})
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range tt.setReady {
				h.SetReady(r)
			}
			code, body := getReady(t, h.Handler())
			if code != tt.want || body != tt.wantBody || h.Ready() != (tt.want == 200) {
				t.Errorf("GET /ready = %d %s (Ready %v), want %d %s", code, body, h.Ready(), tt.want, tt.wantBody)
			}
			// Liveness is independent of readiness.
			rec := httptest.NewRecorder()
			h.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/health", nil))
			if rec.Code != 200 {
				t.Errorf("GET /health = %d while /ready = %d", rec.Code, code)
			}
		})
	}
}

// TestNotReadyWhileDraining checks that shutdown flips readiness before it
// waits for the request in flight.
func TestNotReadyWhileDraining(t *testing.T) {
	a := blocking{entered: make(chan struct{}), release: make(chan struct{})}
	shutdown := make(chan struct{})
	h, err := server.New(server.Options{Agent: a, OnShutdown: func() { close(shutdown) }})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(nil)
	ln := srv.Listener // a loopback listener the host will serve and close
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- h.Serve(ctx, ln) }()

	done := make(chan struct{})
	go func() {
		defer close(done)
		resp, err := http.Post("http://"+ln.Addr().String()+"/responses", "application/json", strings.NewReader(`{"input":"x"}`))
		if err == nil {
			resp.Body.Close()
		}
	}()
	<-a.entered
	if code, _ := getReady(t, h.Handler()); code != 200 {
		t.Fatalf("GET /ready = %d before shutdown", code)
	}
	cancel()
	<-shutdown
	if code, body := getReady(t, h.Handler()); code != 503 || body != `{"status":"draining"}` {
		t.Errorf("GET /ready while draining = %d %s, want 503 draining", code, body)
	}
	close(a.release)
	<-done
	if err := <-served; err != nil {
		t.Fatalf("Serve = %v", err)
	}
}
