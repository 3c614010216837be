package devworkspace

import (
	"context"
	"encoding/base64"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/databricks/databricks-sdk-go"
	"github.com/databricks/databricks-sdk-go/service/dashboards"
	"github.com/databricks/databricks-sdk-go/service/sql"
	"github.com/databricks/databricks-sdk-go/service/workspace"
)

const coreSpace = "01dev0genie0sales"

// corePollGenie polls GetMessage (not the SDK waiter, which never stops on
// CANCELLED) until a final status, returning every status seen.
func corePollGenie(t testing.TB, w *databricks.WorkspaceClient, conv, msg string) (*dashboards.GenieMessage, []dashboards.MessageStatus) {
	t.Helper()
	var seen []dashboards.MessageStatus
	for i := 0; i < 20; i++ {
		m, err := w.Genie.GetMessage(context.Background(), dashboards.GenieGetConversationMessageRequest{SpaceId: coreSpace, ConversationId: conv, MessageId: msg})
		if err != nil {
			t.Fatal(err)
		}
		seen = append(seen, m.Status)
		switch m.Status {
		case dashboards.MessageStatusCompleted, dashboards.MessageStatusFailed, dashboards.MessageStatusCancelled:
			return m, seen
		}
	}
	t.Fatalf("message never finished: %v", seen)
	return nil, nil
}

func TestGenieFlow(t *testing.T) {
	ws := coreShared(t)
	ctx := context.Background()
	for _, tc := range []struct {
		name   string
		client *databricks.WorkspaceClient
	}{{"alice", corePAT(t, ws, AliceToken)}, {"agent-sp", coreM2M(t, ws)}} {
		t.Run(tc.name, func(t *testing.T) {
			w := tc.client
			space, err := w.Genie.GetSpaceBySpaceId(ctx, coreSpace)
			if err != nil || space.Title != "Sales analytics" || space.WarehouseId != "dev-warehouse" {
				t.Fatalf("space: %+v %v", space, err)
			}
			wait, err := w.Genie.StartConversation(ctx, dashboards.GenieStartConversationMessageRequest{SpaceId: coreSpace, Content: "top 5 products by revenue"})
			if err != nil {
				t.Fatal(err)
			}
			start := wait.Response
			if start.Message.Status != dashboards.MessageStatusSubmitted || start.ConversationId == "" || start.Conversation.Title == "" {
				t.Fatalf("start: %+v", start)
			}
			m, seen := corePollGenie(t, w, start.ConversationId, start.MessageId)
			want := []dashboards.MessageStatus{"FETCHING_METADATA", "ASKING_AI", "EXECUTING_QUERY", "COMPLETED"}
			if !reflect.DeepEqual(seen, want) {
				t.Fatalf("statuses %v, want %v", seen, want)
			}
			if len(m.Attachments) != 2 || m.Attachments[0].Query == nil || m.Attachments[1].Text == nil {
				t.Fatalf("attachments: %+v", m.Attachments)
			}
			q := m.Attachments[0].Query
			if !strings.Contains(q.Query, "LIMIT 5") || q.Title != "Top products by revenue" || q.StatementId == "" || q.QueryResultMetadata.RowCount != 5 {
				t.Fatalf("query attachment: %+v", q)
			}
			if !strings.HasPrefix(m.Attachments[1].Text.Content, "Top products by revenue: 5 row(s).") {
				t.Fatalf("text attachment: %q", m.Attachments[1].Text.Content)
			}
			res, err := w.Genie.GetMessageAttachmentQueryResult(ctx, dashboards.GenieGetMessageAttachmentQueryResultRequest{
				SpaceId: coreSpace, ConversationId: start.ConversationId, MessageId: start.MessageId, AttachmentId: m.Attachments[0].AttachmentId})
			if err != nil {
				t.Fatal(err)
			}
			sr := res.StatementResponse
			if sr.Status.State != sql.StatementStateSucceeded || len(sr.Result.DataArray) != 5 || sr.Manifest.Schema.Columns[1].Name != "revenue" {
				t.Fatalf("query result: %+v", sr)
			}
			again, err := w.Genie.ExecuteMessageAttachmentQuery(ctx, dashboards.GenieExecuteMessageAttachmentQueryRequest{
				SpaceId: coreSpace, ConversationId: start.ConversationId, MessageId: start.MessageId, AttachmentId: m.Attachments[0].AttachmentId})
			if err != nil || !reflect.DeepEqual(again.StatementResponse.Result.DataArray, sr.Result.DataArray) || again.StatementResponse.StatementId == sr.StatementId {
				t.Fatalf("execute-query: %+v %v", again, err)
			}
			// The same result through the statement API, as the owner.
			st, err := w.StatementExecution.GetStatementByStatementId(ctx, q.StatementId)
			if err != nil || !reflect.DeepEqual(st.Result.DataArray, sr.Result.DataArray) {
				t.Fatalf("statement %s: %v", q.StatementId, err)
			}
			// Follow-up in the same conversation.
			fw, err := w.Genie.CreateMessage(ctx, dashboards.GenieCreateConversationMessageRequest{SpaceId: coreSpace, ConversationId: start.ConversationId, Content: "And the revenue by region?"})
			if err != nil {
				t.Fatal(err)
			}
			fm, _ := corePollGenie(t, w, start.ConversationId, fw.Response.MessageId)
			if fm.Status != dashboards.MessageStatusCompleted || fm.Attachments[0].Query.QueryResultMetadata.RowCount != 4 {
				t.Fatalf("follow-up: %+v", fm)
			}
			list, err := w.Genie.ListConversations(ctx, dashboards.GenieListConversationsRequest{SpaceId: coreSpace})
			if err != nil {
				t.Fatal(err)
			}
			var found bool
			for _, c := range list.Conversations {
				found = found || c.ConversationId == start.ConversationId
			}
			if !found {
				t.Fatalf("conversation missing from list %+v", list.Conversations)
			}
		})
	}
}

func TestGenieFailedAndCancelled(t *testing.T) {
	ws := coreShared(t)
	ctx := context.Background()
	w := corePAT(t, ws, AliceToken)
	for _, tt := range []struct {
		question string
		want     dashboards.MessageStatus
	}{
		{"Why is the sky blue at dusk?", dashboards.MessageStatusFailed},
		{"Top products by revenue, please cancel", dashboards.MessageStatusCancelled},
	} {
		wait, err := w.Genie.StartConversation(ctx, dashboards.GenieStartConversationMessageRequest{SpaceId: coreSpace, Content: tt.question})
		if err != nil {
			t.Fatal(err)
		}
		m, _ := corePollGenie(t, w, wait.Response.ConversationId, wait.Response.MessageId)
		if m.Status != tt.want {
			t.Fatalf("%q: status %s, want %s", tt.question, m.Status, tt.want)
		}
		if tt.want == dashboards.MessageStatusFailed && (m.Error == nil || m.Error.Error == "") {
			t.Fatalf("FAILED without error: %+v", m)
		}
		if len(m.Attachments) != 0 {
			t.Fatalf("%s message has attachments", m.Status)
		}
	}
}

func TestGeniePermissions(t *testing.T) {
	ws := coreShared(t)
	ctx := context.Background()
	bob := corePAT(t, ws, BobToken)
	_, err := bob.Genie.StartConversation(ctx, dashboards.GenieStartConversationMessageRequest{SpaceId: coreSpace, Content: "top products"})
	if !errors.Is(err, databricks.ErrPermissionDenied) || !strings.Contains(err.Error(), "CAN_RUN") {
		t.Fatalf("bob: %v", err)
	}
	if _, err := bob.Genie.GetSpaceBySpaceId(ctx, coreSpace); !errors.Is(err, databricks.ErrPermissionDenied) {
		t.Fatalf("bob get space: %v", err)
	}
	if _, err := corePAT(t, ws, AliceToken).Genie.GetSpaceBySpaceId(ctx, "nope"); !errors.Is(err, databricks.ErrNotFound) {
		t.Fatalf("unknown space: %v", err)
	}
	// A conversation belongs to its owner.
	alice := corePAT(t, ws, AliceToken)
	wait, err := alice.Genie.StartConversation(ctx, dashboards.GenieStartConversationMessageRequest{SpaceId: coreSpace, Content: "How many customers are in each segment?"})
	if err != nil {
		t.Fatal(err)
	}
	_, err = coreM2M(t, ws).Genie.GetMessage(ctx, dashboards.GenieGetConversationMessageRequest{SpaceId: coreSpace, ConversationId: wait.Response.ConversationId, MessageId: wait.Response.MessageId})
	if !errors.Is(err, databricks.ErrNotFound) {
		t.Fatalf("agent-sp reads alice's conversation: %v", err)
	}
}

func TestGenieCallerNeedsSelectAndSQLFailures(t *testing.T) {
	cfg, err := DefaultConfig()
	if err != nil {
		t.Fatal(err)
	}
	// carol may run the space but reads no tables.
	cfg.Permissions = append(cfg.Permissions, PermissionConfig{Principal: "carol@example.com", ObjectType: "genie", ObjectID: coreSpace, Level: "CAN_RUN"})
	// An example whose SQL fails when it runs.
	sp := &cfg.Genie.Spaces[0]
	sp.Examples = append(sp.Examples, GenieExampleConfig{Question: "What is the churn forecast?", Title: "Churn", SQL: "SELECT churn_rate FROM main.sales.customers"})
	ws := coreStart(t, Options{Config: cfg})
	ctx := context.Background()
	_, err = corePAT(t, ws, CarolToken).Genie.StartConversation(ctx, dashboards.GenieStartConversationMessageRequest{SpaceId: coreSpace, Content: "top products by revenue"})
	if !errors.Is(err, databricks.ErrPermissionDenied) || !strings.Contains(err.Error(), "USE_CATALOG on catalog main") {
		t.Fatalf("carol: %v", err)
	}
	alice := corePAT(t, ws, AliceToken)
	wait, err := alice.Genie.StartConversation(ctx, dashboards.GenieStartConversationMessageRequest{SpaceId: coreSpace, Content: "churn forecast"})
	if err != nil {
		t.Fatal(err)
	}
	m, seen := corePollGenie(t, alice, wait.Response.ConversationId, wait.Response.MessageId)
	if m.Status != dashboards.MessageStatusFailed || seen[len(seen)-2] != dashboards.MessageStatusExecutingQuery ||
		m.Error == nil || m.Error.Type != dashboards.MessageErrorTypeSqlExecutionException || !strings.Contains(m.Error.Error, "churn_rate") {
		t.Fatalf("failing SQL: %+v after %v", m, seen)
	}
}

func TestGenieImmediateAnswersWithSDKWaiter(t *testing.T) {
	cfg, err := DefaultConfig()
	if err != nil {
		t.Fatal(err)
	}
	cfg.Genie.ImmediateAnswers = true
	ws := coreStart(t, Options{Config: cfg})
	w := coreM2M(t, ws)
	start := time.Now()
	m, err := w.Genie.StartConversationAndWait(context.Background(), dashboards.GenieStartConversationMessageRequest{SpaceId: coreSpace, Content: "revenue by product category"})
	if err != nil {
		t.Fatal(err)
	}
	if m.Status != dashboards.MessageStatusCompleted || m.Attachments[0].Query.Title != "Revenue by category" {
		t.Fatalf("message: %+v", m)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("SDK waiter took %v", d)
	}
}

func TestAskGenieInProcess(t *testing.T) {
	ws := coreShared(t)
	m, err := ws.askGenie(context.Background(), ws.principal(SPClientID), coreSpace, "", "How many orders are there by status?")
	if err != nil {
		t.Fatal(err)
	}
	if m.Status != genieCompleted || len(m.Result.Rows) != 5 || m.StatementID == "" || m.Text == "" {
		t.Fatalf("askGenie: %+v", m)
	}
	if got := ws.messageJSON(m, false)["status"]; got != genieCompleted {
		t.Fatalf("askGenie message is at %v, want fully revealed", got)
	}
}

func TestSecrets(t *testing.T) {
	ws := coreShared(t)
	ctx := context.Background()
	for _, w := range []*databricks.WorkspaceClient{corePAT(t, ws, AliceToken), coreM2M(t, ws)} {
		s, err := w.Secrets.GetSecret(ctx, workspace.GetSecretRequest{Scope: "agent", Key: "openai_api_key"})
		if err != nil {
			t.Fatal(err)
		}
		v, err := base64.StdEncoding.DecodeString(s.Value)
		if err != nil || string(v) != "sk-dev-not-a-real-key" {
			t.Fatalf("secret value %q %v", v, err)
		}
		keys, err := w.Secrets.ListSecretsAll(ctx, workspace.ListSecretsRequest{Scope: "agent"})
		if err != nil || len(keys) != 2 {
			t.Fatalf("list: %+v %v", keys, err)
		}
	}
	bob := corePAT(t, ws, BobToken)
	if _, err := bob.Secrets.GetSecret(ctx, workspace.GetSecretRequest{Scope: "agent", Key: "openai_api_key"}); !errors.Is(err, databricks.ErrPermissionDenied) {
		t.Fatalf("bob: %v", err)
	}
	alice := corePAT(t, ws, AliceToken)
	if _, err := alice.Secrets.GetSecret(ctx, workspace.GetSecretRequest{Scope: "agent", Key: "nope"}); !errors.Is(err, databricks.ErrNotFound) {
		t.Fatalf("unknown key: %v", err)
	}
	if _, err := alice.Secrets.GetSecret(ctx, workspace.GetSecretRequest{Scope: "nope", Key: "x"}); !errors.Is(err, databricks.ErrNotFound) {
		t.Fatalf("unknown scope: %v", err)
	}
}

// BenchmarkGenieStartToCompleted measures a Genie question from
// start-conversation to COMPLETED through the real SDK, polling GetMessage
// without sleeps; the baseline runs the same SQL through the statement API.
func BenchmarkGenieStartToCompleted(b *testing.B) {
	ws := coreShared(b)
	ctx := context.Background()
	c := coreConfig(ws)
	c.Token, c.AuthType, c.RateLimitPerSecond = AliceToken, "pat", 1<<20 // the default 15 req/s would dominate
	w, err := databricks.NewWorkspaceClient(c)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("genie", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			wait, err := w.Genie.StartConversation(ctx, dashboards.GenieStartConversationMessageRequest{SpaceId: coreSpace, Content: "top 10 products by revenue"})
			if err != nil {
				b.Fatal(err)
			}
			if m, _ := corePollGenie(b, w, wait.Response.ConversationId, wait.Response.MessageId); m.Status != dashboards.MessageStatusCompleted {
				b.Fatal(m.Status)
			}
		}
	})
	b.Run("baseline-statement", func(b *testing.B) {
		stmt := ws.genieSpace(coreSpace).Examples[0].SQL
		b.ReportAllocs()
		for b.Loop() {
			if _, err := coreExec(b, w, stmt); err != nil {
				b.Fatal(err)
			}
		}
	})
}
