package devworkspace

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"net/http"
	"strings"
	"time"
)

// Statement states of the Statement Execution API.
const (
	statePending   = "PENDING"
	stateRunning   = "RUNNING"
	stateSucceeded = "SUCCEEDED"
	stateFailed    = "FAILED"
	stateCanceled  = "CANCELED"
)

// maxStatementRuntime stops runaway statements (a recursive CTE without
// an end) so they cannot hold a database connection forever.
const maxStatementRuntime = 5 * time.Minute

// maxStatements bounds how many statements (with results) are kept.
const maxStatements = 1000

// statement is one submitted statement; fields after mu-protected creation
// change only under ws.mu.
type statement struct {
	id       string
	owner    *Principal
	state    string
	result   *ResultSet
	err      *SQLError
	rowLimit int64
	cancel   context.CancelFunc
	done     chan struct{}
}

func newID(prefix string) string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	h := prefix + hex.EncodeToString(b[:])[len(prefix):]
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}

func (ws *Workspace) registerSQLRoutes() {
	ws.route("POST /api/2.0/sql/statements", ws.handleExecuteStatement)
	ws.route("GET /api/2.0/sql/statements/{id}", ws.handleGetStatement)
	ws.route("POST /api/2.0/sql/statements/{id}/cancel", ws.handleCancelStatement)
	ws.route("GET /api/2.0/sql/statements/{id}/result/chunks/{chunk}", ws.handleGetChunk)
}

// executeRequest is ExecuteStatementRequest on the wire.
type executeRequest struct {
	WarehouseID   string           `json:"warehouse_id"`
	Statement     string           `json:"statement"`
	WaitTimeout   string           `json:"wait_timeout"`
	OnWaitTimeout string           `json:"on_wait_timeout"`
	Parameters    []StatementParam `json:"parameters"`
	Catalog       string           `json:"catalog"`
	Schema        string           `json:"schema"`
	RowLimit      int64            `json:"row_limit"`
	ByteLimit     int64            `json:"byte_limit"`
	Disposition   string           `json:"disposition"`
	Format        string           `json:"format"`
}

// parseWaitTimeout accepts "0s" or "5s".."50s" (default 10s).
func parseWaitTimeout(s string) (time.Duration, error) {
	if s == "" {
		return 10 * time.Second, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || !strings.HasSuffix(s, "s") || (d != 0 && (d < 5*time.Second || d > 50*time.Second)) {
		return 0, badRequest("wait_timeout must be 0s or between 5s and 50s, got %q", s)
	}
	return d, nil
}

// handleExecuteStatement compiles the statement and checks the caller's
// rights synchronously (403 for a missing privilege, as a client probe
// expects), then runs it; SQL errors come back as FAILED statements (200).
func (ws *Workspace) handleExecuteStatement(w http.ResponseWriter, r *http.Request) {
	var req executeRequest
	if !decodeBody(w, r, &req) {
		return
	}
	p := callerFrom(r.Context()).Principal
	if req.WarehouseID == "" || req.Statement == "" {
		writeError(w, http.StatusBadRequest, codeInvalidParam, "warehouse_id and statement are required")
		return
	}
	if !ws.warehouseExists(req.WarehouseID) {
		writeError(w, http.StatusNotFound, codeNotFound, "warehouse %s does not exist", req.WarehouseID)
		return
	}
	if !ws.requirePermission(w, r, "warehouses", req.WarehouseID, "CAN_USE") {
		return
	}
	wait, err := parseWaitTimeout(req.WaitTimeout)
	if err != nil {
		writeErr(w, err)
		return
	}
	if req.Disposition != "" && req.Disposition != "INLINE" || req.Format != "" && req.Format != "JSON_ARRAY" {
		writeError(w, http.StatusBadRequest, codeInvalidParam, "the dev workspace supports disposition INLINE with format JSON_ARRAY only")
		return
	}
	if req.RowLimit < 0 {
		writeError(w, http.StatusBadRequest, codeInvalidParam, "row_limit must not be negative")
		return
	}
	o := queryOptions{Catalog: "main", Schema: req.Schema}
	if req.Catalog != "" {
		o.Catalog = req.Catalog
	}
	st, err := ws.submit(p, req.Statement, req.Parameters, o, req.RowLimit)
	if err != nil {
		writeErr(w, err)
		return
	}
	if wait == 0 {
		// Queued: report it as such even if a worker already picked it up.
		writeJSON(w, http.StatusOK, ws.statementResponse(st, true))
		return
	}
	select {
	case <-st.done:
	case <-time.After(wait):
		if req.OnWaitTimeout == "CANCEL" {
			ws.cancelStatement(st)
		}
	case <-r.Context().Done():
	}
	writeJSON(w, http.StatusOK, ws.statementResponse(st, false))
}

// submit compiles a statement and checks access synchronously (errors are
// for the HTTP response), then runs it in the background. A statement that
// does not compile is stored as FAILED.
func (ws *Workspace) submit(p *Principal, stmt string, params []StatementParam, o queryOptions, rowLimit int64) (*statement, error) {
	st := &statement{id: newID("01ef"), owner: p, state: statePending, rowLimit: rowLimit, done: make(chan struct{})}
	stmt, err := expandIdentifier(stmt, params)
	var c *compiled
	if err == nil {
		c, err = ws.compile(stmt, o)
	}
	if err != nil {
		var se *SQLError
		if !errors.As(err, &se) {
			return nil, err
		}
		st.state, st.err = stateFailed, se
		close(st.done)
		ws.storeStatement(st)
		return st, nil
	}
	if err := ws.checkAccess(p, c); err != nil {
		return nil, err
	}
	args, err := bindParams(params)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), maxStatementRuntime)
	st.cancel = cancel
	ws.storeStatement(st)
	go func() {
		defer cancel()
		ws.mu.Lock()
		if st.state == statePending {
			st.state = stateRunning
		}
		ws.mu.Unlock()
		rs, err := ws.run(ctx, c, args)
		ws.mu.Lock()
		defer ws.mu.Unlock()
		defer close(st.done)
		switch {
		case st.state == stateCanceled:
		case err != nil:
			st.state, st.err = stateFailed, asSQLError(err)
		default:
			st.state, st.result = stateSucceeded, rs
		}
	}()
	return st, nil
}

// recordStatement stores an already finished statement (Genie runs its SQL
// itself) so that GET /sql/statements/{id} serves it to its owner.
func (ws *Workspace) recordStatement(p *Principal, rs *ResultSet, err error) *statement {
	st := &statement{id: newID("01ef"), owner: p, done: make(chan struct{})}
	if err != nil {
		st.state, st.err = stateFailed, asSQLError(err)
	} else {
		st.state, st.result = stateSucceeded, rs
	}
	close(st.done)
	ws.storeStatement(st)
	return st
}

func asSQLError(err error) *SQLError {
	var se *SQLError
	if errors.As(err, &se) {
		return se
	}
	if errors.Is(err, context.Canceled) {
		return &SQLError{Code: "CANCELLED", Message: "the statement was cancelled"}
	}
	return &SQLError{Code: codeBadRequest, Message: err.Error()}
}

func (ws *Workspace) storeStatement(st *statement) {
	ws.mu.Lock()
	defer ws.mu.Unlock()
	ws.statements[st.id] = st
	ws.stmtOrder = append(ws.stmtOrder, st.id)
	if len(ws.stmtOrder) > maxStatements {
		delete(ws.statements, ws.stmtOrder[0])
		ws.stmtOrder = ws.stmtOrder[1:]
	}
}

// ownStatement finds a statement of the caller's; others' are not found.
func (ws *Workspace) ownStatement(w http.ResponseWriter, r *http.Request) *statement {
	id := r.PathValue("id")
	ws.mu.Lock()
	st := ws.statements[id]
	ws.mu.Unlock()
	if st == nil || st.owner.Name != callerFrom(r.Context()).Principal.Name {
		writeError(w, http.StatusNotFound, codeNotFound, "statement %s does not exist", id)
		return nil
	}
	return st
}

func (ws *Workspace) handleGetStatement(w http.ResponseWriter, r *http.Request) {
	if st := ws.ownStatement(w, r); st != nil {
		writeJSON(w, http.StatusOK, ws.statementResponse(st, false))
	}
}

func (ws *Workspace) handleCancelStatement(w http.ResponseWriter, r *http.Request) {
	if st := ws.ownStatement(w, r); st != nil {
		ws.cancelStatement(st)
		writeJSON(w, http.StatusOK, struct{}{})
	}
}

func (ws *Workspace) cancelStatement(st *statement) {
	ws.mu.Lock()
	defer ws.mu.Unlock()
	if st.state == statePending || st.state == stateRunning {
		st.state = stateCanceled
		if st.cancel != nil {
			st.cancel()
		}
	}
}

func (ws *Workspace) handleGetChunk(w http.ResponseWriter, r *http.Request) {
	st := ws.ownStatement(w, r)
	if st == nil {
		return
	}
	resp := ws.statementResponse(st, false)
	if r.PathValue("chunk") != "0" || resp.Result == nil {
		writeError(w, http.StatusNotFound, codeNotFound, "chunk %s of statement %s does not exist", r.PathValue("chunk"), st.id)
		return
	}
	writeJSON(w, http.StatusOK, resp.Result)
}

// ---- wire shapes ----

type statementResponse struct {
	StatementID string          `json:"statement_id"`
	Status      statementStatus `json:"status"`
	Manifest    *resultManifest `json:"manifest,omitempty"`
	Result      *resultData     `json:"result,omitempty"`
}

type statementStatus struct {
	State string    `json:"state"`
	Error *SQLError `json:"error,omitempty"`
}

type resultManifest struct {
	Format          string       `json:"format"`
	Schema          resultSchema `json:"schema"`
	TotalRowCount   int64        `json:"total_row_count"`
	TotalChunkCount int          `json:"total_chunk_count"`
	Chunks          []chunkInfo  `json:"chunks"`
	Truncated       bool         `json:"truncated"`
}

type resultSchema struct {
	ColumnCount int            `json:"column_count"`
	Columns     []resultColumn `json:"columns"`
}

type resultColumn struct {
	Name     string `json:"name"`
	TypeName string `json:"type_name"`
	TypeText string `json:"type_text"`
	Position int    `json:"position"`
}

type chunkInfo struct {
	ChunkIndex int   `json:"chunk_index"`
	RowOffset  int64 `json:"row_offset"`
	RowCount   int64 `json:"row_count"`
}

type resultData struct {
	ChunkIndex int         `json:"chunk_index"`
	RowOffset  int64       `json:"row_offset"`
	RowCount   int64       `json:"row_count"`
	DataArray  [][]*string `json:"data_array"`
}

// statementResponse renders a statement; queued reports PENDING without
// looking at the worker's progress.
func (ws *Workspace) statementResponse(st *statement, queued bool) *statementResponse {
	ws.mu.Lock()
	state, rs, serr, limit := st.state, st.result, st.err, st.rowLimit
	ws.mu.Unlock()
	if queued && state != stateFailed {
		state = statePending
	}
	resp := &statementResponse{StatementID: st.id, Status: statementStatus{State: state}}
	switch state {
	case stateFailed:
		resp.Status.Error = serr
	case stateSucceeded:
		resp.Manifest, resp.Result = resultPayload(rs, limit)
	}
	return resp
}

// resultPayload is the manifest and single inline chunk of a result.
func resultPayload(rs *ResultSet, limit int64) (*resultManifest, *resultData) {
	data := rs.DataArray()
	truncated := false
	if limit > 0 && int64(len(data)) > limit {
		data, truncated = data[:limit], true
	}
	cols := make([]resultColumn, len(rs.Columns))
	for i, c := range rs.Columns {
		cols[i] = resultColumn{Name: c.Name, TypeName: c.TypeName, TypeText: typeText(c.TypeName), Position: i}
	}
	n := int64(len(data))
	m := &resultManifest{
		Format:          "JSON_ARRAY",
		Schema:          resultSchema{ColumnCount: len(cols), Columns: cols},
		TotalRowCount:   n,
		TotalChunkCount: 1,
		Chunks:          []chunkInfo{{RowCount: n}},
		Truncated:       truncated,
	}
	if data == nil {
		data = [][]*string{}
	}
	return m, &resultData{RowCount: n, DataArray: data}
}
