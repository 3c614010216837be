package genie_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/databricks/databricks-sdk-go"
	"github.com/databricks/databricks-sdk-go/service/sql"

	"github.com/agentrt/agentrt/agent"
	"github.com/agentrt/agentrt/tools"
	"github.com/agentrt/agentrt/tools/genie"
	"github.com/agentrt/agentrt/tools/internal/testws"
)

// fakeGenie answers every question after two polls with the scripted final
// status; it records how conversations were started or continued.
type fakeGenie struct {
	mu      sync.Mutex
	final   string // terminal status
	polls   map[string]int
	starts  int
	follows []string // conversation ids continued
	convN   int
}

func (f *fakeGenie) server(t *testing.T) *httptest.Server {
	f.polls = map[string]int{}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/2.0/genie/spaces/{space}", func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") == "Bearer bob-token" {
			w.WriteHeader(http.StatusForbidden)
			io.WriteString(w, `{"error_code":"PERMISSION_DENIED","message":"You need CAN_RUN on this Genie space"}`)
			return
		}
		io.WriteString(w, `{"space_id":"s1","title":"Sales","description":"Orders and revenue by product."}`)
	})
	start := func(w http.ResponseWriter, conv string) {
		f.mu.Lock()
		f.polls[conv+"/m"] = 0
		f.mu.Unlock()
		fmt.Fprintf(w, `{"conversation_id":%q,"message_id":"m","message":{"message_id":"m","conversation_id":%q,"status":"SUBMITTED"}}`, conv, conv)
	}
	mux.HandleFunc("POST /api/2.0/genie/spaces/s1/start-conversation", func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		f.starts++
		f.convN++
		conv := fmt.Sprintf("c%d", f.convN)
		f.mu.Unlock()
		start(w, conv)
	})
	mux.HandleFunc("POST /api/2.0/genie/spaces/s1/conversations/{conv}/messages", func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		f.follows = append(f.follows, r.PathValue("conv"))
		f.mu.Unlock()
		start(w, r.PathValue("conv"))
	})
	mux.HandleFunc("GET /api/2.0/genie/spaces/s1/conversations/{conv}/messages/m", func(w http.ResponseWriter, r *http.Request) {
		conv := r.PathValue("conv")
		f.mu.Lock()
		f.polls[conv+"/m"]++
		n := f.polls[conv+"/m"]
		f.mu.Unlock()
		status := "EXECUTING_QUERY"
		if n >= 2 {
			status = f.final
		}
		msg := map[string]any{"message_id": "m", "conversation_id": conv, "space_id": "s1", "status": status}
		switch status {
		case "COMPLETED":
			msg["attachments"] = []any{
				map[string]any{"attachment_id": "t0", "text": map[string]any{"content": "First try."}},
				map[string]any{"attachment_id": "q0", "query": map[string]any{"query": "SELECT 0", "description": "old"}},
				map[string]any{"attachment_id": "t1", "text": map[string]any{"content": "Superseded."}},
				map[string]any{"attachment_id": "q1", "query": map[string]any{"query": "SELECT product, revenue FROM sales", "description": "Revenue by product"}},
				map[string]any{"attachment_id": "t2", "text": map[string]any{"content": "Widgets lead."}},
				map[string]any{"attachment_id": "sq", "suggested_questions": map[string]any{"questions": []string{"And by region?"}}},
			}
		case "FAILED":
			msg["error"] = map[string]any{"error": "warehouse is stopped", "type": "WAREHOUSE_ACCESS_MISSING_EXCEPTION"}
		}
		json.NewEncoder(w).Encode(msg)
	})
	mux.HandleFunc("GET /api/2.0/genie/spaces/s1/conversations/{conv}/messages/m/attachments/q1/query-result", func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, `{"statement_response":{"statement_id":"st","status":{"state":"SUCCEEDED"},
			"manifest":{"schema":{"column_count":2,"columns":[{"name":"product","type_name":"STRING"},{"name":"revenue","type_name":"DOUBLE"}]}},
			"result":{"row_count":2,"data_array":[["Widget","1200000.0"],["Gadget | Pro","800.5"]]}}}`)
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

func newTool(t *testing.T, w *databricks.WorkspaceClient) agent.Tool {
	p, err := genie.New(genie.Options{SpaceID: "s1", PollInterval: time.Millisecond, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	ts, err := p.Prepare(context.Background(), w)
	if err != nil {
		t.Fatal(err)
	}
	return ts[0]
}

func TestAsk(t *testing.T) {
	f := &fakeGenie{final: "COMPLETED"}
	srv := f.server(t)
	tool := newTool(t, testws.PAT(t, srv.URL, "alice-token"))
	def := tool.Definition()
	if def.Name != "genie_s1" || !strings.Contains(def.Description, `"Sales"`) || !strings.Contains(def.Description, "Orders and revenue") {
		t.Errorf("definition = %+v", def)
	}
	ctx := agent.NewContext(context.Background(), &agent.Env{Caller: agent.Caller{Identity: agent.Identity{PrincipalID: "alice"}}})
	ctx = tools.WithConversationID(ctx, "conv-1")
	out, err := tool.Call(ctx, `{"question":"Top products by revenue?"}`)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"First try.", "Widgets lead.", "## Description\nRevenue by product", "SELECT product, revenue FROM sales",
		"| product | revenue |", "| Widget | 1200000.0 |", `| Gadget \| Pro | 800.5 |`, "And by region?", "Genie conversation: c1"} {
		if !strings.Contains(out, want) {
			t.Errorf("answer lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "Superseded.") {
		t.Errorf("text between two queries must be dropped:\n%s", out)
	}
	// The same request conversation continues the Genie conversation; another starts a new one.
	if _, err := tool.Call(ctx, `{"question":"And last month?"}`); err != nil {
		t.Fatal(err)
	}
	if _, err := tool.Call(tools.WithConversationID(ctx, "conv-2"), `{"question":"Hi"}`); err != nil {
		t.Fatal(err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.starts != 2 || len(f.follows) != 1 || f.follows[0] != "c1" {
		t.Errorf("starts %d follows %v", f.starts, f.follows)
	}
}

// Anonymous callers never continue each other's Genie conversations, even
// when they send the same conversation id.
func TestAnonymousConversationsNotShared(t *testing.T) {
	f := &fakeGenie{final: "COMPLETED"}
	tool := newTool(t, testws.PAT(t, f.server(t).URL, "sp-token"))
	for range 2 {
		ctx := tools.WithConversationID(agent.NewContext(context.Background(), &agent.Env{}), "shared-id")
		if _, err := tool.Call(ctx, `{"question":"Hi"}`); err != nil {
			t.Fatal(err)
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.starts != 2 || len(f.follows) != 0 {
		t.Errorf("anonymous callers: starts %d follows %v; want 2 starts, no follow-up", f.starts, f.follows)
	}
}

func TestTerminalStatuses(t *testing.T) {
	for _, tc := range []struct{ status, want string }{
		{"FAILED", "warehouse is stopped"},
		{"CANCELLED", "cancelled"},
		{"QUERY_RESULT_EXPIRED", "expired"},
	} {
		t.Run(tc.status, func(t *testing.T) {
			f := &fakeGenie{final: tc.status}
			tool := newTool(t, testws.PAT(t, f.server(t).URL, "alice-token"))
			_, err := tool.Call(context.Background(), `{"question":"q"}`)
			var se *genie.StatusError
			if !errors.As(err, &se) || string(se.Status) != tc.status || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v", err)
			}
		})
	}
}

func TestDeadline(t *testing.T) {
	f := &fakeGenie{final: "EXECUTING_QUERY"} // never finishes
	srv := f.server(t)
	p, _ := genie.New(genie.Options{SpaceID: "s1", PollInterval: time.Millisecond, MaxPollInterval: 5 * time.Millisecond, Timeout: 100 * time.Millisecond})
	ts, err := p.Prepare(context.Background(), testws.PAT(t, srv.URL, "alice-token"))
	if err != nil {
		t.Fatal(err)
	}
	_, err = ts[0].Call(context.Background(), `{"question":"q"}`)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v", err)
	}
}

// A poll that the SDK's rate limiter refuses because it would outlast the
// deadline is a deadline too (it once surfaced as an opaque rate-limiter
// error, depending on timing).
func TestDeadlineAtTheRateLimiter(t *testing.T) {
	f := &fakeGenie{final: "EXECUTING_QUERY"} // never finishes
	srv := f.server(t)
	p, _ := genie.New(genie.Options{SpaceID: "s1", PollInterval: time.Millisecond, MaxPollInterval: 5 * time.Millisecond, Timeout: 300 * time.Millisecond})
	ts, err := p.Prepare(context.Background(), testws.PATWithRate(t, srv.URL, "alice-token", 2))
	if err != nil {
		t.Fatal(err)
	}
	_, err = ts[0].Call(context.Background(), `{"question":"q"}`)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want context.DeadlineExceeded", err)
	}
}

func TestDenied(t *testing.T) {
	f := &fakeGenie{final: "COMPLETED"}
	p, _ := genie.New(genie.Options{SpaceID: "s1"})
	_, err := p.Prepare(context.Background(), testws.PAT(t, f.server(t).URL, "bob-token"))
	if !errors.Is(err, databricks.ErrPermissionDenied) {
		t.Fatalf("err = %v", err)
	}
}

func TestRenderTableBudget(t *testing.T) {
	st := &sql.StatementResponse{
		Manifest: &sql.ResultManifest{Schema: &sql.ResultSchema{Columns: []sql.ColumnInfo{{Name: "n", TypeName: sql.ColumnInfoTypeNameInt}, {Name: "s"}}}},
		Result:   &sql.ResultData{},
	}
	for i := range 1000 {
		st.Result.DataArray = append(st.Result.DataArray, []string{fmt.Sprint(i), strings.Repeat("x", 20)})
	}
	for _, budget := range []int{500, 2000, 1 << 20} {
		table, total, cut := genie.RenderTable(st, budget)
		if total != 1000 {
			t.Errorf("total = %d", total)
		}
		if budget < 1<<20 {
			if !cut || len(table) > budget || !strings.Contains(table, "of 1000 rows") {
				t.Errorf("budget %d: len %d cut %v\n%s", budget, len(table), cut, table[max(0, len(table)-120):])
			}
		} else if cut || strings.Count(table, "\n") != 1001 {
			t.Errorf("full table cut=%v lines=%d", cut, strings.Count(table, "\n"))
		}
		if !strings.HasPrefix(table, "| n | s |\n| ---: | --- |\n| 0 |") {
			t.Errorf("header: %q", table[:40])
		}
	}
}
