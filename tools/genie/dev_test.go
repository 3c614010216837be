package genie_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/databricks/databricks-sdk-go"

	"github.com/agentrt/agentrt/tools"
	"github.com/agentrt/agentrt/tools/genie"
	"github.com/agentrt/agentrt/tools/internal/testws"
)

// TestDevWorkspace asks the dev Genie space as each dev user: alice gets an
// answer with SQL and a table; bob and carol have no CAN_RUN and are refused
// at the probe; a user client without the genie scope never calls out.
func TestDevWorkspace(t *testing.T) {
	ws := testws.Dev(t)
	user := testws.User(t, ws.URL(), genie.Scope)
	p, err := genie.New(genie.Options{SpaceID: "01dev0genie0sales", PollInterval: 20 * time.Millisecond, MaxResultBytes: 4096})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		user   string
		denied bool
	}{{"alice", false}, {"bob", true}, {"carol", true}} {
		t.Run(tc.user, func(t *testing.T) {
			ctx := tools.WithConversationID(testws.As(tc.user), "conv-"+tc.user)
			ts, err := p.Prepare(ctx, user)
			if tc.denied {
				if !errors.Is(err, databricks.ErrPermissionDenied) {
					t.Fatalf("err = %v, want permission denied", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if d := ts[0].Definition(); !strings.Contains(d.Description, "Sales analytics") {
				t.Errorf("description = %q", d.Description)
			}
			out, err := ts[0].Call(ctx, `{"question":"What are the top 5 products by revenue?"}`)
			if err != nil {
				t.Fatal(err)
			}
			for _, want := range []string{"## SQL", "SELECT", "## Result", "|", "Genie conversation: "} {
				if !strings.Contains(out, want) {
					t.Errorf("answer lacks %q:\n%s", want, out)
				}
			}
			if len(out) > 8192 {
				t.Errorf("answer is %d bytes, budget 4096 for the table", len(out))
			}
			conv := out[strings.LastIndex(out, ": ")+2:]
			// A follow-up in the same request conversation continues Genie's.
			out2, err := ts[0].Call(ctx, `{"question":"How many orders were placed?"}`)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.HasSuffix(out2, "Genie conversation: "+conv) {
				t.Errorf("follow-up not in conversation %s:\n%s", conv, out2)
			}
		})
	}
	t.Run("scope refusal", func(t *testing.T) {
		narrow := testws.User(t, ws.URL(), "vectorsearch.vector-search-indexes")
		if _, err := p.Prepare(testws.As("alice"), narrow); !tools.IsPermission(err) {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("system binding", func(t *testing.T) {
		// The agent's service principal has CAN_RUN: bound to System the
		// tool works for every caller, bob included.
		sys := testws.System(t, ws.URL())
		ts, err := p.Prepare(testws.As("bob"), sys)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := ts[0].Call(testws.As("bob"), `{"question":"How many customers are there?"}`); err != nil {
			t.Fatal(err)
		}
	})
}
