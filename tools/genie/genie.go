// Package genie is a tool that asks a Databricks AI/BI Genie space a question
// in natural language and returns its answer: the generated SQL, its
// description and the query result as a markdown table cut to a size budget.
//
// It starts a Genie conversation or continues the one kept for the request's
// conversation, and polls for the answer with its own loop and deadline (the
// SDK's waiter never stops on CANCELLED).
package genie

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/databricks/databricks-sdk-go"
	"github.com/databricks/databricks-sdk-go/service/dashboards"
	"github.com/databricks/databricks-sdk-go/service/sql"

	"github.com/agentrt/agentrt/agent"
	"github.com/agentrt/agentrt/tools"
)

// Scope is the user API scope the tool needs.
const Scope = "dashboards.genie"

// Options configure a Genie tool.
type Options struct {
	SpaceID string // required

	ToolName    string // default "genie_" + the space id
	Description string // default: built from the space's title and description

	// Timeout bounds one question, polling included. Default 2m.
	Timeout time.Duration
	// PollInterval is the first wait between polls; it grows by half each
	// time up to MaxPollInterval. Defaults 200ms and 2s.
	PollInterval    time.Duration
	MaxPollInterval time.Duration
	// MaxResultBytes is the size budget of the rendered table; rows past it
	// are cut with a note. Default 16 KiB.
	MaxResultBytes int
	// ConversationTTL is how long a Genie conversation is remembered for a
	// request conversation. Default 30m.
	ConversationTTL time.Duration
}

// idChars reports whether s is 1 to limit ASCII letters, digits, _ or -
// (the shape of tool names and space ids). Not a regexp: {1,128} compiles
// to a program that cost every binary linking this package 3 ms at init.
func idChars(s string, limit int) bool {
	if s == "" || len(s) > limit {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// Provider prepares the tool for one Genie space.
type Provider struct {
	opts  Options
	name  string
	convs *conversations
}

// New validates o and returns a provider.
func New(o Options) (*Provider, error) {
	if !idChars(o.SpaceID, 128) {
		return nil, fmt.Errorf("genie: invalid space id %q", o.SpaceID)
	}
	if o.Timeout <= 0 {
		o.Timeout = 2 * time.Minute
	}
	if o.PollInterval <= 0 {
		o.PollInterval = 200 * time.Millisecond
	}
	if o.MaxPollInterval < o.PollInterval {
		o.MaxPollInterval = max(2*time.Second, o.PollInterval)
	}
	if o.MaxResultBytes <= 0 {
		o.MaxResultBytes = 16 << 10
	}
	if o.ConversationTTL <= 0 {
		o.ConversationTTL = 30 * time.Minute
	}
	name := o.ToolName
	if name == "" {
		name = "genie_" + o.SpaceID
		if len(name) > 64 {
			name = name[:64]
		}
	}
	if !idChars(name, 64) {
		return nil, fmt.Errorf("genie: tool name %q must match ^[a-zA-Z0-9_-]{1,64}$", name)
	}
	return &Provider{opts: o, name: name, convs: &conversations{m: map[convKey]convEntry{}}}, nil
}

// Name implements tools.Namer.
func (p *Provider) Name() string { return p.name }

// Requirements implements tools.Provider.
func (p *Provider) Requirements() tools.Requirements {
	return tools.Requirements{
		Resources:  []agent.Resource{{Type: agent.GenieSpace, Name: p.opts.SpaceID}},
		UserScopes: []string{Scope},
	}
}

// Prepare implements tools.Provider: reading the space as w's identity fails
// with a permission error for a caller who may not run it.
func (p *Provider) Prepare(ctx context.Context, w *databricks.WorkspaceClient) ([]agent.Tool, error) {
	if w == nil {
		return nil, tools.ErrNoClient
	}
	space, err := w.Genie.GetSpace(ctx, dashboards.GenieGetSpaceRequest{SpaceId: p.opts.SpaceID})
	if err != nil {
		return nil, fmt.Errorf("genie space %s: %w", p.opts.SpaceID, err)
	}
	desc := p.opts.Description
	if desc == "" {
		title := space.Title
		if title == "" {
			title = p.opts.SpaceID
		}
		desc = fmt.Sprintf("Ask the Genie space %q a question about its data in plain language. "+
			"Genie writes and runs the SQL and returns the query, its description and the result table.", title)
		if space.Description != "" {
			desc += " The space: " + space.Description
		}
	}
	return []agent.Tool{&tool{p: p, w: w, desc: desc}}, nil
}

type tool struct {
	p    *Provider
	w    *databricks.WorkspaceClient
	desc string
}

func (t *tool) Definition() agent.ToolDefinition {
	params, _ := json.Marshal(map[string]any{
		"type": "object",
		"properties": map[string]any{
			"question": map[string]any{"type": "string", "description": "The question to ask, in plain language, with everything Genie needs to know from the conversation so far."},
		},
		"required": []string{"question"},
	})
	return agent.ToolDefinition{Name: t.p.name, Description: t.desc, Parameters: params}
}

// Answer is Genie's answer to one question.
type Answer struct {
	ConversationID     string   `json:"conversation_id"`
	MessageID          string   `json:"message_id"`
	Text               string   `json:"text,omitempty"`        // text attachments
	Description        string   `json:"description,omitempty"` // of the query
	SQL                string   `json:"sql,omitempty"`
	Table              string   `json:"table,omitempty"` // markdown
	RowCount           int      `json:"row_count"`
	Truncated          bool     `json:"truncated,omitempty"`
	SuggestedQuestions []string `json:"suggested_questions,omitempty"`
}

// Markdown renders the answer in sections for a model to read.
func (a *Answer) Markdown() string {
	var b strings.Builder
	if a.Text != "" {
		b.WriteString(a.Text + "\n\n")
	}
	if a.Description != "" {
		b.WriteString("## Description\n" + a.Description + "\n\n")
	}
	if a.SQL != "" {
		b.WriteString("## SQL\n```sql\n" + strings.TrimSpace(a.SQL) + "\n```\n\n")
	}
	if a.SQL != "" || a.Table != "" {
		b.WriteString("## Result\n")
		if a.Table == "" {
			b.WriteString("EMPTY\n\n")
		} else {
			b.WriteString(a.Table + "\n\n")
		}
	}
	if len(a.SuggestedQuestions) > 0 {
		b.WriteString("## Suggested questions\n- " + strings.Join(a.SuggestedQuestions, "\n- ") + "\n\n")
	}
	fmt.Fprintf(&b, "Genie conversation: %s", a.ConversationID)
	return b.String()
}

// StatusError is a question that ended without an answer: Genie failed, was
// cancelled or its result expired.
type StatusError struct {
	Status  dashboards.MessageStatus
	Message string
}

func (e *StatusError) Error() string {
	switch e.Status {
	case dashboards.MessageStatusFailed:
		if e.Message != "" {
			return "Genie query failed: " + e.Message
		}
		return "Genie query failed"
	case dashboards.MessageStatusCancelled:
		return "Genie query was cancelled"
	case dashboards.MessageStatusQueryResultExpired:
		return "Genie query result expired; ask again"
	}
	return fmt.Sprintf("Genie query ended with status %s %s", e.Status, e.Message)
}

func (t *tool) Call(ctx context.Context, arguments string) (string, error) {
	var a struct {
		Question string `json:"question"`
	}
	if err := json.Unmarshal([]byte(arguments), &a); err != nil {
		return "", fmt.Errorf("invalid arguments: %w", err)
	}
	if strings.TrimSpace(a.Question) == "" {
		return "", errors.New(`invalid arguments: "question" is required`)
	}
	ans, err := t.p.Ask(ctx, t.w, a.Question)
	if err != nil {
		return "", err
	}
	return ans.Markdown(), nil
}

// Ask puts a question to the space as w's identity, continuing the Genie
// conversation remembered for the request's conversation (see
// tools.WithConversationID), and waits for the answer.
func (p *Provider) Ask(ctx context.Context, w *databricks.WorkspaceClient, question string) (*Answer, error) {
	ctx, cancel := context.WithTimeout(ctx, p.opts.Timeout)
	defer cancel()
	key := convKey{principal: agent.FromContext(ctx).Caller.PrincipalID, conversation: tools.ConversationID(ctx)}
	// Only a verified caller's conversations are remembered: anonymous
	// callers could otherwise continue each other's by choosing the same id.
	remember := key.conversation != "" && key.principal != ""
	convID := ""
	if remember {
		convID = p.convs.get(key)
	}
	var convIDOut, msgID string
	if convID != "" {
		waiter, err := w.Genie.CreateMessage(ctx, dashboards.GenieCreateConversationMessageRequest{
			SpaceId: p.opts.SpaceID, ConversationId: convID, Content: question})
		if err != nil {
			return nil, fmt.Errorf("genie: ask: %w", err)
		}
		convIDOut, msgID = waiter.ConversationId, waiter.MessageId
	} else {
		waiter, err := w.Genie.StartConversation(ctx, dashboards.GenieStartConversationMessageRequest{
			SpaceId: p.opts.SpaceID, Content: question})
		if err != nil {
			return nil, fmt.Errorf("genie: start conversation: %w", err)
		}
		convIDOut, msgID = waiter.ConversationId, waiter.MessageId
	}
	if remember {
		p.convs.put(key, convIDOut, p.opts.ConversationTTL)
	}
	msg, err := p.wait(ctx, w, convIDOut, msgID)
	if err != nil {
		return nil, err
	}
	return p.answer(ctx, w, msg)
}

// wait polls the message until it reaches a terminal status.
func (p *Provider) wait(ctx context.Context, w *databricks.WorkspaceClient, convID, msgID string) (*dashboards.GenieMessage, error) {
	interval := p.opts.PollInterval
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("genie: no answer in time: %w", ctx.Err())
		case <-timer.C:
		}
		msg, err := w.Genie.GetMessage(ctx, dashboards.GenieGetConversationMessageRequest{
			SpaceId: p.opts.SpaceID, ConversationId: convID, MessageId: msgID})
		if err != nil {
			if deadlineRefusal(err) {
				// The SDK's rate limiter refuses a wait that would outlast
				// the deadline: the answer did not come in time.
				return nil, fmt.Errorf("genie: no answer in time: %w", errors.Join(context.DeadlineExceeded, err))
			}
			return nil, fmt.Errorf("genie: get message: %w", err)
		}
		switch msg.Status {
		case dashboards.MessageStatusCompleted:
			return msg, nil
		case dashboards.MessageStatusFailed, dashboards.MessageStatusCancelled, dashboards.MessageStatusQueryResultExpired:
			se := &StatusError{Status: msg.Status}
			if msg.Error != nil {
				se.Message = msg.Error.Error
			}
			return nil, se
		}
		timer.Reset(interval)
		interval = min(interval+interval/2, p.opts.MaxPollInterval)
	}
}

// deadlineRefusal reports whether err is the SDK's rate limiter refusing to
// wait past the ctx's deadline (x/time/rate says so only in its message).
func deadlineRefusal(err error) bool {
	return strings.Contains(err.Error(), "would exceed context deadline")
}

func (p *Provider) answer(ctx context.Context, w *databricks.WorkspaceClient, msg *dashboards.GenieMessage) (*Answer, error) {
	ans := &Answer{ConversationID: msg.ConversationId, MessageID: msg.MessageId}
	first, last := -1, -1
	for i, a := range msg.Attachments {
		if a.Query != nil {
			if first < 0 {
				first = i
			}
			last = i
		}
	}
	var texts []string
	for i, a := range msg.Attachments {
		switch {
		case a.Text != nil && a.Text.Content != "":
			if first >= 0 && i > first && i < last {
				continue // superseded attempt between two queries
			}
			texts = append(texts, a.Text.Content)
		case a.SuggestedQuestions != nil:
			ans.SuggestedQuestions = a.SuggestedQuestions.Questions
		}
	}
	ans.Text = strings.Join(texts, "\n\n")
	if last < 0 {
		return ans, nil
	}
	q := msg.Attachments[last]
	ans.SQL, ans.Description = q.Query.Query, q.Query.Description
	if ans.Description == "" {
		ans.Description = q.Query.Title
	}
	interval := p.opts.PollInterval
	for {
		res, err := w.Genie.GetMessageAttachmentQueryResult(ctx, dashboards.GenieGetMessageAttachmentQueryResultRequest{
			SpaceId: p.opts.SpaceID, ConversationId: msg.ConversationId, MessageId: msg.MessageId, AttachmentId: q.AttachmentId})
		if err != nil {
			return nil, fmt.Errorf("genie: query result: %w", err)
		}
		st := res.StatementResponse
		if st == nil || st.Status == nil {
			return ans, nil
		}
		switch st.Status.State {
		case sql.StatementStateSucceeded:
			ans.Table, ans.RowCount, ans.Truncated = RenderTable(st, p.opts.MaxResultBytes)
			return ans, nil
		case sql.StatementStatePending, sql.StatementStateRunning:
			select {
			case <-ctx.Done():
				return nil, fmt.Errorf("genie: query result not ready in time: %w", ctx.Err())
			case <-time.After(interval):
			}
			interval = min(interval+interval/2, p.opts.MaxPollInterval)
		default:
			msgText := string(st.Status.State)
			if st.Status.Error != nil && st.Status.Error.Message != "" {
				msgText += ": " + st.Status.Error.Message
			}
			ans.Table = "No query result: " + msgText
			return ans, nil
		}
	}
}

// RenderTable renders a statement result as a markdown table no longer than
// maxBytes (when the header fits), cutting rows and adding a note when they
// do not all fit. It returns the table, the total row count and whether rows
// were cut.
func RenderTable(st *sql.StatementResponse, maxBytes int) (string, int, bool) {
	if st == nil || st.Manifest == nil || st.Manifest.Schema == nil || st.Result == nil {
		return "", 0, false
	}
	cols := st.Manifest.Schema.Columns
	rows := st.Result.DataArray
	var b strings.Builder
	b.WriteString("|")
	for _, c := range cols {
		b.WriteString(" " + cell(c.Name) + " |")
	}
	b.WriteString("\n|")
	for _, c := range cols {
		if isNumeric(c.TypeName) {
			b.WriteString(" ---: |")
		} else {
			b.WriteString(" --- |")
		}
	}
	total := len(rows)
	if st.Manifest.TotalRowCount > int64(total) {
		total = int(st.Manifest.TotalRowCount)
	}
	noteFor := func(shown int) string {
		return fmt.Sprintf("\n\n_Showing %d of %d rows; the rest were cut to fit %d bytes._", shown, total, maxBytes)
	}
	budget := maxBytes - len(noteFor(total))
	shown := 0
	var line strings.Builder
	for _, r := range rows {
		line.Reset()
		line.WriteString("\n|")
		for i := range cols {
			v := ""
			if i < len(r) {
				v = r[i]
			}
			line.WriteString(" " + cell(v) + " |")
		}
		if b.Len()+line.Len() > budget {
			break
		}
		b.WriteString(line.String())
		shown++
	}
	truncated := shown < total
	if truncated {
		b.WriteString(noteFor(shown))
	}
	return b.String(), total, truncated
}

func isNumeric(t sql.ColumnInfoTypeName) bool {
	switch t {
	case sql.ColumnInfoTypeNameInt, sql.ColumnInfoTypeNameLong, sql.ColumnInfoTypeNameShort, sql.ColumnInfoTypeNameByte,
		sql.ColumnInfoTypeNameFloat, sql.ColumnInfoTypeNameDouble, sql.ColumnInfoTypeNameDecimal:
		return true
	}
	return false
}

var cellReplacer = strings.NewReplacer("|", `\|`, "\r\n", " ", "\n", " ", "\r", " ")

func cell(s string) string { return cellReplacer.Replace(s) }

type convKey struct{ principal, conversation string }

type convEntry struct {
	id      string
	expires time.Time
}

// conversations remembers which Genie conversation continues which request
// conversation, per principal, for a TTL.
type conversations struct {
	mu sync.Mutex
	m  map[convKey]convEntry
}

func (c *conversations) get(k convKey) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.m[k]
	if !ok || time.Now().After(e.expires) {
		return ""
	}
	return e.id
}

// maxConversations bounds the memory a replica spends on conversation ids.
const maxConversations = 10000

func (c *conversations) put(k convKey, id string, ttl time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := time.Now()
	if _, ok := c.m[k]; !ok && len(c.m) >= maxConversations {
		c.shrinkLocked(now)
	}
	c.m[k] = convEntry{id: id, expires: now.Add(ttl)}
}

// shrinkLocked drops expired entries and, if that is not enough, arbitrary
// ones down to 90% of the cap, so the sweep runs once per many inserts. A
// dropped conversation only means the next question starts a new one.
func (c *conversations) shrinkLocked(now time.Time) {
	for k, e := range c.m {
		if now.After(e.expires) {
			delete(c.m, k)
		}
	}
	for k := range c.m {
		if len(c.m) < maxConversations*9/10 {
			break
		}
		delete(c.m, k)
	}
}
