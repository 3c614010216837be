package devworkspace

import (
	"context"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode"
)

// Genie message statuses the dev workspace goes through.
const (
	genieSubmitted        = "SUBMITTED"
	genieFetchingMetadata = "FETCHING_METADATA"
	genieAskingAI         = "ASKING_AI"
	genieExecutingQuery   = "EXECUTING_QUERY"
	genieCompleted        = "COMPLETED"
	genieFailed           = "FAILED"
	genieCancelled        = "CANCELLED"
)

// genieMinScore is the least word overlap (Dice coefficient) between a
// question and an example question for the example to answer it.
const genieMinScore = 0.4

type genieConversation struct {
	id      string
	spaceID string
	owner   *Principal
	title   string
	created time.Time
	updated time.Time
	msgs    []*genieMessage
}

// genieMessage is one question and the dev Genie's answer. The answer is
// computed when the message is created; Status is its final status. Over
// REST the status is revealed one step per poll (steps[shown]); askGenie
// returns messages already fully revealed.
type genieMessage struct {
	ID             string
	ConversationID string
	SpaceID        string
	Content        string
	UserID         string
	Created        time.Time

	Status      string // final: COMPLETED, FAILED or CANCELLED
	Error       string // why it FAILED
	ErrorType   string
	Title       string // of the matched example
	Description string
	SQL         string     // the SQL that ran
	StatementID string     // its statement (GET /api/2.0/sql/statements/{id} as the owner)
	Result      *ResultSet // its result when COMPLETED
	Truncated   bool
	Text        string // the text answer when COMPLETED

	QueryAttachmentID string
	TextAttachmentID  string

	steps []string
	shown int // guarded by ws.mu
}

func (ws *Workspace) genieSpace(id string) *GenieSpaceConfig {
	for i := range ws.cfg.Genie.Spaces {
		if ws.cfg.Genie.Spaces[i].SpaceID == id {
			return &ws.cfg.Genie.Spaces[i]
		}
	}
	return nil
}

// askGenie asks a question in a space as p, in conversation conversationID
// or a new one when it is empty. It needs CAN_RUN on the space and SELECT on
// the tables of the SQL that answers (else *PermissionError); an unknown
// space or conversation is a *NotFoundError. The returned message is final
// (COMPLETED, FAILED or CANCELLED); callers must treat it as read-only.
func (ws *Workspace) askGenie(ctx context.Context, p *Principal, spaceID, conversationID, question string) (*genieMessage, error) {
	m, err := ws.genieAsk(ctx, p, spaceID, conversationID, question)
	if err != nil {
		return nil, err
	}
	ws.mu.Lock()
	m.shown = len(m.steps) - 1
	ws.mu.Unlock()
	return m, nil
}

// genieAsk creates a message whose status REST polls will reveal step by
// step.
func (ws *Workspace) genieAsk(ctx context.Context, p *Principal, spaceID, conversationID, question string) (*genieMessage, error) {
	space := ws.genieSpace(spaceID)
	if space == nil {
		return nil, &NotFoundError{Kind: "Genie space", Name: spaceID}
	}
	if err := ws.checkPermission(p, "genie", spaceID, "CAN_RUN"); err != nil {
		return nil, err
	}
	question = strings.TrimSpace(question)
	if question == "" {
		return nil, badRequest("content is required")
	}
	now := ws.now()
	m := &genieMessage{ID: newGenieID(), SpaceID: spaceID, Content: question, UserID: p.ID, Created: now}
	m.QueryAttachmentID, m.TextAttachmentID = newGenieID(), newGenieID()

	switch ex, score := matchGenieExample(space.Examples, question); {
	case space.CancelPhrase != "" && strings.Contains(strings.ToLower(question), strings.ToLower(space.CancelPhrase)):
		m.Status = genieCancelled
		m.steps = []string{genieSubmitted, genieFetchingMetadata, genieAskingAI, genieCancelled}
	case ex == nil || score < genieMinScore:
		m.Status, m.ErrorType = genieFailed, "MISSING_SQL_QUERY_EXCEPTION"
		m.Error = "Genie could not match the question to any example question of space " + space.Title
		m.steps = []string{genieSubmitted, genieFetchingMetadata, genieAskingAI, genieFailed}
	default:
		m.Title, m.Description = ex.Title, ex.Description
		if m.Description == "" {
			m.Description = "Answers: " + ex.Question
		}
		m.SQL = adaptLimit(ex, question)
		rs, err := ws.queryWith(ctx, p, m.SQL, nil, queryOptions{Catalog: "main"})
		if _, denied := err.(*PermissionError); denied {
			return nil, err
		}
		st := ws.recordStatement(p, rs, err)
		m.StatementID = st.id
		m.steps = []string{genieSubmitted, genieFetchingMetadata, genieAskingAI, genieExecutingQuery}
		if err != nil {
			m.Status, m.ErrorType, m.Error = genieFailed, "SQL_EXECUTION_EXCEPTION", asSQLError(err).Message
		} else {
			m.Status, m.Result = genieCompleted, rs
			m.Text = genieSummary(m.Title, rs)
		}
		m.steps = append(m.steps, m.Status)
	}

	ws.mu.Lock()
	defer ws.mu.Unlock()
	var conv *genieConversation
	if conversationID == "" {
		conv = &genieConversation{id: newGenieID(), spaceID: spaceID, owner: p, title: question, created: now}
		ws.conversations[conv.id] = conv
	} else {
		conv = ws.conversations[conversationID]
		if conv == nil || conv.spaceID != spaceID || conv.owner.Name != p.Name {
			return nil, &NotFoundError{Kind: "Genie conversation", Name: conversationID}
		}
	}
	m.ConversationID = conv.id
	conv.updated = now
	conv.msgs = append(conv.msgs, m)
	return m, nil
}

func newGenieID() string { return strings.ReplaceAll(newID("01f0"), "-", "") }

var genieStopwords = map[string]bool{
	"a": true, "an": true, "the": true, "what": true, "which": true, "who": true, "is": true, "are": true,
	"was": true, "were": true, "of": true, "in": true, "on": true, "by": true, "for": true, "to": true,
	"me": true, "show": true, "how": true, "many": true, "much": true, "do": true, "does": true, "there": true,
	"each": true, "per": true, "and": true, "or": true, "our": true, "we": true, "us": true, "give": true,
	"list": true, "please": true, "tell": true, "i": true, "can": true, "you": true, "with": true,
}

// genieWords is the set of content words of a question, lightly stemmed.
func genieWords(s string) map[string]bool {
	out := map[string]bool{}
	for _, f := range strings.FieldsFunc(strings.ToLower(s), func(r rune) bool { return !unicode.IsLetter(r) && !unicode.IsDigit(r) }) {
		if genieStopwords[f] || isNumber(f) {
			continue
		}
		if len(f) > 3 && strings.HasSuffix(f, "s") && !strings.HasSuffix(f, "ss") {
			f = strings.TrimSuffix(f, "s")
		}
		out[f] = true
	}
	return out
}

func isNumber(s string) bool { _, err := strconv.Atoi(s); return err == nil }

// matchGenieExample returns the example whose question shares the most
// content words with q (Dice coefficient), first wins ties.
func matchGenieExample(examples []GenieExampleConfig, q string) (*GenieExampleConfig, float64) {
	qw := genieWords(q)
	var best *GenieExampleConfig
	bestScore := 0.0
	for i := range examples {
		ew := genieWords(examples[i].Question)
		common := 0
		for w := range qw {
			if ew[w] {
				common++
			}
		}
		if len(qw)+len(ew) == 0 {
			continue
		}
		if s := 2 * float64(common) / float64(len(qw)+len(ew)); s > bestScore {
			best, bestScore = &examples[i], s
		}
	}
	return best, bestScore
}

var limitRE = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`(?i)\bLIMIT\s+(\d+)\b`) })
var numberRE = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`\b(\d{1,4})\b`) })

// adaptLimit answers "top 5 …" with the example's "top 10 …" SQL limited
// to 5: when the example question and the SQL's LIMIT agree on a number and
// the question names another one, that one is used.
func adaptLimit(ex *GenieExampleConfig, q string) string {
	lim := limitRE().FindStringSubmatch(ex.SQL)
	exNum := numberRE().FindStringSubmatch(ex.Question)
	qNum := numberRE().FindStringSubmatch(q)
	if lim == nil || exNum == nil || qNum == nil || lim[1] != exNum[1] {
		return ex.SQL
	}
	n, _ := strconv.Atoi(qNum[1])
	if n < 1 || n > 1000 {
		return ex.SQL
	}
	return limitRE().ReplaceAllString(ex.SQL, "LIMIT "+strconv.Itoa(n))
}

// genieSummary is the text answer: row count and the first rows.
func genieSummary(title string, rs *ResultSet) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: %d row(s).", title, len(rs.Rows))
	data := rs.DataArray()
	for i, row := range data {
		if i == 3 {
			b.WriteString(" …")
			break
		}
		parts := make([]string, len(row))
		for j, c := range row {
			v := "NULL"
			if c != nil {
				v = *c
			}
			parts[j] = rs.Columns[j].Name + "=" + v
		}
		fmt.Fprintf(&b, " %s.", strings.Join(parts, ", "))
	}
	return b.String()
}

// ---- REST ----

func (ws *Workspace) registerGenieRoutes() {
	const sp = "/api/2.0/genie/spaces/{space_id}"
	ws.route("GET /api/2.0/genie/spaces", ws.handleListGenieSpaces)
	ws.route("GET "+sp, ws.handleGetGenieSpace)
	ws.route("POST "+sp+"/start-conversation", ws.handleStartConversation)
	ws.route("GET "+sp+"/conversations", ws.handleListConversations)
	ws.route("POST "+sp+"/conversations/{cid}/messages", ws.handleCreateMessage)
	ws.route("GET "+sp+"/conversations/{cid}/messages", ws.handleListMessages)
	ws.route("GET "+sp+"/conversations/{cid}/messages/{mid}", ws.handleGetMessage)
	ws.route("GET "+sp+"/conversations/{cid}/messages/{mid}/attachments/{aid}/query-result", ws.handleAttachmentResult)
	ws.route("GET "+sp+"/conversations/{cid}/messages/{mid}/query-result/{aid}", ws.handleAttachmentResult)
	ws.route("GET "+sp+"/conversations/{cid}/messages/{mid}/query-result", ws.handleAttachmentResult)
	ws.route("POST "+sp+"/conversations/{cid}/messages/{mid}/attachments/{aid}/execute-query", ws.handleExecuteAttachment)
	ws.route("POST "+sp+"/conversations/{cid}/messages/{mid}/execute-query", ws.handleExecuteAttachment)
}

func genieSpaceJSON(s *GenieSpaceConfig) map[string]any {
	created := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC).Format(time.RFC3339)
	return map[string]any{
		"space_id": s.SpaceID, "title": s.Title, "description": s.Description, "warehouse_id": s.WarehouseID,
		"parent_path": "/Workspace/Shared", "create_time": created, "update_time": created,
	}
}

// handleListGenieSpaces lists the spaces the caller holds any permission on.
func (ws *Workspace) handleListGenieSpaces(w http.ResponseWriter, r *http.Request) {
	p := callerFrom(r.Context()).Principal
	out := []map[string]any{}
	for i := range ws.cfg.Genie.Spaces {
		if s := &ws.cfg.Genie.Spaces[i]; ws.permissionLevel(p, "genie", s.SpaceID) != "" {
			out = append(out, genieSpaceJSON(s))
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"spaces": out})
}

func (ws *Workspace) handleGetGenieSpace(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("space_id")
	s := ws.genieSpace(id)
	if s == nil {
		writeError(w, http.StatusNotFound, codeNotFound, "Genie space %s does not exist", id)
		return
	}
	if !ws.requirePermission(w, r, "genie", id, "CAN_VIEW") {
		return
	}
	writeJSON(w, http.StatusOK, genieSpaceJSON(s))
}

type genieContent struct {
	Content string `json:"content"`
}

func (ws *Workspace) handleStartConversation(w http.ResponseWriter, r *http.Request) {
	var req genieContent
	if !decodeBody(w, r, &req) {
		return
	}
	m, err := ws.genieAsk(r.Context(), callerFrom(r.Context()).Principal, r.PathValue("space_id"), "", req.Content)
	if err != nil {
		writeErr(w, err)
		return
	}
	ws.mu.Lock()
	conv := ws.conversations[m.ConversationID]
	cj := conversationJSON(conv)
	ws.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]any{
		"conversation_id": m.ConversationID, "message_id": m.ID,
		"conversation": cj, "message": ws.messageJSON(m, false),
	})
}

func (ws *Workspace) handleCreateMessage(w http.ResponseWriter, r *http.Request) {
	var req genieContent
	if !decodeBody(w, r, &req) {
		return
	}
	m, err := ws.genieAsk(r.Context(), callerFrom(r.Context()).Principal, r.PathValue("space_id"), r.PathValue("cid"), req.Content)
	if err != nil {
		writeErr(w, err)
		return
	}
	writeJSON(w, http.StatusOK, ws.messageJSON(m, false))
}

// conversationFor checks the space, CAN_RUN and ownership of a conversation.
func (ws *Workspace) conversationFor(w http.ResponseWriter, r *http.Request) *genieConversation {
	spaceID, cid := r.PathValue("space_id"), r.PathValue("cid")
	if ws.genieSpace(spaceID) == nil {
		writeError(w, http.StatusNotFound, codeNotFound, "Genie space %s does not exist", spaceID)
		return nil
	}
	if !ws.requirePermission(w, r, "genie", spaceID, "CAN_RUN") {
		return nil
	}
	ws.mu.Lock()
	conv := ws.conversations[cid]
	ws.mu.Unlock()
	if conv == nil || conv.spaceID != spaceID || conv.owner.Name != callerFrom(r.Context()).Principal.Name {
		writeError(w, http.StatusNotFound, codeNotFound, "conversation %s does not exist", cid)
		return nil
	}
	return conv
}

func (ws *Workspace) messageFor(w http.ResponseWriter, r *http.Request) *genieMessage {
	conv := ws.conversationFor(w, r)
	if conv == nil {
		return nil
	}
	mid := r.PathValue("mid")
	ws.mu.Lock()
	defer ws.mu.Unlock()
	for _, m := range conv.msgs {
		if m.ID == mid {
			return m
		}
	}
	writeError(w, http.StatusNotFound, codeNotFound, "message %s does not exist", mid)
	return nil
}

// handleGetMessage reveals the next status step on every poll.
func (ws *Workspace) handleGetMessage(w http.ResponseWriter, r *http.Request) {
	if m := ws.messageFor(w, r); m != nil {
		writeJSON(w, http.StatusOK, ws.messageJSON(m, true))
	}
}

func (ws *Workspace) handleListMessages(w http.ResponseWriter, r *http.Request) {
	conv := ws.conversationFor(w, r)
	if conv == nil {
		return
	}
	ws.mu.Lock()
	msgs := slices.Clone(conv.msgs)
	ws.mu.Unlock()
	out := make([]map[string]any, len(msgs))
	for i, m := range msgs {
		out[i] = ws.messageJSON(m, false)
	}
	writeJSON(w, http.StatusOK, map[string]any{"messages": out})
}

func (ws *Workspace) handleListConversations(w http.ResponseWriter, r *http.Request) {
	spaceID := r.PathValue("space_id")
	if ws.genieSpace(spaceID) == nil {
		writeError(w, http.StatusNotFound, codeNotFound, "Genie space %s does not exist", spaceID)
		return
	}
	if !ws.requirePermission(w, r, "genie", spaceID, "CAN_RUN") {
		return
	}
	p := callerFrom(r.Context()).Principal
	ws.mu.Lock()
	var convs []*genieConversation
	for _, c := range ws.conversations {
		if c.spaceID == spaceID && c.owner.Name == p.Name {
			convs = append(convs, c)
		}
	}
	ws.mu.Unlock()
	slices.SortFunc(convs, func(a, b *genieConversation) int { return b.created.Compare(a.created) })
	out := []map[string]any{}
	for _, c := range convs {
		out = append(out, map[string]any{"conversation_id": c.id, "title": c.title, "created_timestamp": c.created.UnixMilli()})
	}
	writeJSON(w, http.StatusOK, map[string]any{"conversations": out})
}

// handleAttachmentResult serves a query attachment's result once the
// message has reached EXECUTING_QUERY.
func (ws *Workspace) handleAttachmentResult(w http.ResponseWriter, r *http.Request) {
	m := ws.messageFor(w, r)
	if m == nil {
		return
	}
	ws.mu.Lock()
	reached := slices.Index(m.steps, genieExecutingQuery)
	visible := reached >= 0 && m.shown >= reached
	st := ws.statements[m.StatementID]
	ws.mu.Unlock()
	if aid := r.PathValue("aid"); (aid != "" && aid != m.QueryAttachmentID) || m.StatementID == "" {
		writeError(w, http.StatusNotFound, codeNotFound, "query attachment %s does not exist", r.PathValue("aid"))
		return
	}
	if !visible {
		writeError(w, http.StatusBadRequest, "INVALID_STATE", "the query of message %s has not run yet", m.ID)
		return
	}
	if st == nil {
		writeError(w, http.StatusNotFound, codeNotFound, "the query result of message %s expired", m.ID)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"statement_response": ws.statementResponse(st, false)})
}

// handleExecuteAttachment re-runs a query attachment's SQL as the caller
// (execute-query) and returns the fresh result.
func (ws *Workspace) handleExecuteAttachment(w http.ResponseWriter, r *http.Request) {
	m := ws.messageFor(w, r)
	if m == nil {
		return
	}
	if aid := r.PathValue("aid"); (aid != "" && aid != m.QueryAttachmentID) || m.SQL == "" {
		writeError(w, http.StatusNotFound, codeNotFound, "query attachment %s does not exist", r.PathValue("aid"))
		return
	}
	p := callerFrom(r.Context()).Principal
	rs, err := ws.queryWith(r.Context(), p, m.SQL, nil, queryOptions{Catalog: "main"})
	if _, denied := err.(*PermissionError); denied {
		writeErr(w, err)
		return
	}
	// Messages are immutable once created (askGenie callers read them
	// without locks): the fresh result is returned, not stored on it.
	st := ws.recordStatement(p, rs, err)
	writeJSON(w, http.StatusOK, map[string]any{"statement_response": ws.statementResponse(st, false)})
}

func conversationJSON(c *genieConversation) map[string]any {
	return map[string]any{
		"id": c.id, "conversation_id": c.id, "space_id": c.spaceID, "title": c.title,
		"user_id": atoi64(c.owner.ID), "created_timestamp": c.created.UnixMilli(), "last_updated_timestamp": c.updated.UnixMilli(),
	}
}

func atoi64(s string) int64 { n, _ := strconv.ParseInt(s, 10, 64); return n }

// messageJSON renders a message at its current step, advancing the step
// first when advance is set.
func (ws *Workspace) messageJSON(m *genieMessage, advance bool) map[string]any {
	ws.mu.Lock()
	if advance && m.shown < len(m.steps)-1 {
		m.shown++
		if ws.cfg.Genie.ImmediateAnswers {
			m.shown = len(m.steps) - 1
		}
	}
	status := m.steps[m.shown]
	ws.mu.Unlock()
	out := map[string]any{
		"id": m.ID, "message_id": m.ID, "conversation_id": m.ConversationID, "space_id": m.SpaceID,
		"content": m.Content, "status": status, "user_id": atoi64(m.UserID),
		"created_timestamp": m.Created.UnixMilli(), "last_updated_timestamp": ws.now().UnixMilli(),
	}
	switch status {
	case genieFailed:
		out["error"] = map[string]string{"error": m.Error, "type": m.ErrorType}
	case genieCompleted:
		rows := int64(len(m.Result.Rows))
		out["attachments"] = []map[string]any{
			{"attachment_id": m.QueryAttachmentID, "query": map[string]any{
				"id": m.QueryAttachmentID, "title": m.Title, "description": m.Description, "query": strings.TrimSpace(m.SQL),
				"statement_id": m.StatementID, "query_result_metadata": map[string]any{"row_count": rows, "is_truncated": false},
			}},
			{"attachment_id": m.TextAttachmentID, "text": map[string]any{
				"id": m.TextAttachmentID, "content": m.Text, "purpose": "TEXT_ATTACHMENT_PURPOSE_ANSWER",
			}},
		}
		out["query_result"] = map[string]any{"statement_id": m.StatementID, "row_count": rows}
	}
	return out
}
