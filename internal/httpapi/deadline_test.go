package httpapi_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.uber.org/goleak"

	"github.com/agentrt/agentrt/agent"
	"github.com/agentrt/agentrt/internal/httpapi"
	"github.com/agentrt/agentrt/internal/wireproto"
)

// serveTimeouts serves h from a loopback server with net/http's own read
// and write timeouts set, as runtime.Host does.
func serveTimeouts(t *testing.T, h http.Handler, read, write time.Duration) *httptest.Server {
	t.Helper()
	ts := httptest.NewUnstartedServer(h)
	ts.Config.ReadTimeout, ts.Config.WriteTimeout = read, write
	ts.Start()
	t.Cleanup(ts.Close)
	return ts
}

func newAPI(t *testing.T, opts httpapi.Options) *httpapi.Server {
	t.Helper()
	if opts.Logger == nil {
		opts.Logger = quietLogger()
	}
	s, err := httpapi.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// hungStream emits one delta, then hangs until release, ignoring ctx.
type hungStream struct{ release chan struct{} }

func (h hungStream) PredictStream(ctx context.Context, req *agent.Request, emit agent.Emit) error {
	if err := emit(agent.TextDelta("partial", "m")); err != nil {
		return err
	}
	<-h.release
	return nil
}

// The server's write and read timeouts are shorter than the request
// timeout: the timeout must still reach the client as a 504 with the error
// body, never an empty reply (issue 12, finding 1).
func TestLateTimeoutIsA504WithBody(t *testing.T) {
	for _, tc := range []struct {
		name        string
		read, write time.Duration
	}{
		{"write timeout", 0, 200 * time.Millisecond},
		{"read timeout", 200 * time.Millisecond, 0},
		{"both", 200 * time.Millisecond, 200 * time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := newBlocker()
			api := newAPI(t, httpapi.Options{Agent: b, Limits: httpapi.Limits{RequestTimeout: 400 * time.Millisecond}})
			ts := serveTimeouts(t, api.Handler(), tc.read, tc.write)
			// Cleanups run last first: the abandoned call returns, then
			// the server closes (Close waits for its handlers).
			t.Cleanup(func() { close(b.release) })
			resp, err := http.Post(ts.URL+"/responses", "application/json", strings.NewReader(`{"input":"x"}`))
			if err != nil {
				t.Fatalf("no reply: %v", err)
			}
			defer resp.Body.Close()
			raw, err := io.ReadAll(resp.Body)
			if err != nil {
				t.Fatalf("reply cut: %v", err)
			}
			var eb errBody
			if resp.StatusCode != http.StatusGatewayTimeout || json.Unmarshal(raw, &eb) != nil || eb.ErrorCode != "DEADLINE_EXCEEDED" {
				t.Fatalf("got %d %q, want 504 DEADLINE_EXCEEDED", resp.StatusCode, raw)
			}
			// The abandoned call still holds the connection: the client
			// must not queue its next request behind it.
			if !resp.Close {
				t.Error("the 504 for an abandoned call does not close its connection")
			}
		})
	}
}

func TestLateTimeoutStreamsErrorEvent(t *testing.T) {
	for _, tc := range []struct {
		name        string
		read, write time.Duration
	}{
		{"write timeout", 0, 200 * time.Millisecond},
		{"read timeout", 200 * time.Millisecond, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := hungStream{release: make(chan struct{})}
			t.Cleanup(func() { close(a.release) })
			api := newAPI(t, httpapi.Options{Agent: agent.FromStream(a), Limits: httpapi.Limits{RequestTimeout: 400 * time.Millisecond}})
			ts := serveTimeouts(t, api.Handler(), tc.read, tc.write)
			resp := post(t, ts.URL+"/responses", `{"input":"x","stream":true}`)
			defer resp.Body.Close()
			events, _ := sseEvents(t, resp.Body) // fails unless it ends with [DONE]
			last := events[len(events)-1]
			if last.Type != wireproto.EventError || last.Code != "timeout" {
				t.Fatalf("last event %+v, want an error event with code timeout", last)
			}
		})
	}
}

// signalBody reports the handler's first read of a request body.
type signalBody struct {
	io.ReadCloser
	first   bool
	reading chan<- struct{}
}

func (b *signalBody) Read(p []byte) (int, error) {
	if !b.first {
		b.first = true
		b.reading <- struct{}{}
	}
	return b.ReadCloser.Read(p)
}

// Connections that send their body a byte at a time hold no concurrency
// slot: a normal request still gets through (issue 12, finding 2).
func TestSlowBodiesDoNotHoldSlots(t *testing.T) {
	const slots = 2
	api := newAPI(t, httpapi.Options{Agent: agentFunc(func(ctx context.Context, req *agent.Request) (*agent.Response, error) {
		return &agent.Response{Output: []agent.Item{agent.TextItem("", "ok")}}, nil
	}), Limits: httpapi.Limits{MaxConcurrency: slots}})
	reading := make(chan struct{}, slots)
	ts := serveTimeouts(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("X-Slow") != "" {
			r.Body = &signalBody{ReadCloser: r.Body, reading: reading}
		}
		api.Handler().ServeHTTP(w, r)
	}), 0, 0)
	addr := strings.TrimPrefix(ts.URL, "http://")
	for range slots {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() }) // before ts.Close, which waits for the handlers
		fmt.Fprintf(c, "POST /responses HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nX-Slow: 1\r\nContent-Length: 100\r\n\r\n{")
	}
	for range slots {
		<-reading // both handlers are reading their bodies
	}
	resp := post(t, ts.URL+"/responses", `{"input":"x"}`)
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("normal request got %d %s while slow bodies were arriving", resp.StatusCode, b)
	}
}

// notifyHandler signals each log record whose message starts with prefix.
type notifyHandler struct {
	slog.Handler
	prefix string
	ch     chan struct{}
}

func (notifyHandler) Enabled(context.Context, slog.Level) bool { return true }

func (h notifyHandler) Handle(ctx context.Context, r slog.Record) error {
	if strings.HasPrefix(r.Message, h.prefix) {
		h.ch <- struct{}{}
	}
	return nil
}

func sumInt64(t *testing.T, rd sdkmetric.Reader, name string) int64 {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := rd.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if m.Name == name {
				var n int64
				for _, dp := range m.Data.(metricdata.Sum[int64]).DataPoints {
					n += dp.Value
				}
				return n
			}
		}
	}
	return 0
}

// An agent that ignores ctx keeps its slot after its request timed out:
// with MaxConcurrency 1 the next request gets 503, not a second agent; the
// abandoned call is counted until it returns (issue 12, finding 2).
func TestAbandonedAgentKeepsItsSlot(t *testing.T) {
	rd := sdkmetric.NewManualReader()
	prev := otel.GetMeterProvider()
	otel.SetMeterProvider(sdkmetric.NewMeterProvider(sdkmetric.WithReader(rd)))
	t.Cleanup(func() { otel.SetMeterProvider(prev) })

	returned := make(chan struct{}, 1)
	logger := slog.New(notifyHandler{Handler: slog.DiscardHandler, prefix: "abandoned agent returned", ch: returned})
	b := newBlocker()
	released := false
	t.Cleanup(func() {
		if !released {
			close(b.release)
		}
	})
	api := newAPI(t, httpapi.Options{Agent: b, Logger: logger,
		Limits: httpapi.Limits{MaxConcurrency: 1, RequestTimeout: 100 * time.Millisecond}})
	ts := serveTimeouts(t, api.Handler(), 0, 0)

	first := post(t, ts.URL+"/responses", `{"input":"x"}`)
	first.Body.Close()
	if first.StatusCode != http.StatusGatewayTimeout {
		t.Fatalf("first request: %d, want 504", first.StatusCode)
	}
	second := post(t, ts.URL+"/responses", `{"input":"x"}`)
	second.Body.Close()
	if second.StatusCode != http.StatusServiceUnavailable || len(b.entered) != 1 {
		t.Fatalf("second request: %d with %d agents started; want 503 and 1 agent", second.StatusCode, len(b.entered))
	}
	if n := sumInt64(t, rd, "agentrt.agents.abandoned"); n != 1 {
		t.Errorf("agentrt.agents.abandoned = %d, want 1", n)
	}
	if n := sumInt64(t, rd, "agentrt.agents.abandoned.active"); n != 1 {
		t.Errorf("agentrt.agents.abandoned.active = %d, want 1", n)
	}

	released = true
	close(b.release)
	select {
	case <-returned: // logged after the slot is freed
	case <-time.After(10 * time.Second):
		t.Fatal("the abandoned agent's return was not logged")
	}
	third := post(t, ts.URL+"/responses", `{"input":"x"}`)
	third.Body.Close()
	if third.StatusCode != http.StatusOK {
		t.Errorf("after the abandoned agent returned: %d, want 200", third.StatusCode)
	}
	if n := sumInt64(t, rd, "agentrt.agents.abandoned.active"); n != 0 {
		t.Errorf("agentrt.agents.abandoned.active = %d after it returned, want 0", n)
	}
}

// A client that goes away mid-stream cancels the agent's ctx, and nothing
// of the request is left running afterwards.
func TestDisconnectMidStreamLeaksNothing(t *testing.T) {
	for _, timeout := range []time.Duration{0, time.Minute} {
		t.Run(fmt.Sprint("request timeout ", timeout), func(t *testing.T) {
			defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
			cancelled := make(chan error, 1)
			a := streamFunc(func(ctx context.Context, req *agent.Request, emit agent.Emit) error {
				for i := 0; ; i++ { // a token stream that stops only when told
					if err := emit(agent.TextDelta("tok ", "m")); err != nil {
						cancelled <- ctx.Err()
						return err
					}
					if i > 0 {
						<-ctx.Done()
					}
				}
			})
			api := newAPI(t, httpapi.Options{Agent: agent.FromStream(a), Limits: httpapi.Limits{RequestTimeout: timeout}})
			ts := httptest.NewServer(api.Handler())
			ctx, cancel := context.WithCancel(context.Background())
			req, _ := http.NewRequestWithContext(ctx, http.MethodPost, ts.URL+"/responses", strings.NewReader(`{"input":"x","stream":true}`))
			req.Header.Set("Content-Type", "application/json")
			tr := &http.Transport{}
			resp, err := (&http.Client{Transport: tr}).Do(req)
			if err != nil {
				t.Fatal(err)
			}
			sc := bufio.NewScanner(resp.Body)
			for sc.Scan() && !strings.Contains(sc.Text(), "output_text.delta") {
			}
			cancel()
			resp.Body.Close()
			select {
			case err := <-cancelled:
				if !errors.Is(err, context.Canceled) {
					t.Errorf("agent ctx error %v, want context.Canceled", err)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("agent ctx was not cancelled after the client went away")
			}
			ts.Close() // waits for the handler
			tr.CloseIdleConnections()
		})
	}
}
