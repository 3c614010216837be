package devworkspace

import (
	"net/http"
	"slices"
	"strconv"
	"sync"
	"time"
)

// AuditEntry records one API call.
type AuditEntry struct {
	Seq        int64     `json:"seq"`
	Time       time.Time `json:"time"`
	Principal  string    `json:"principal,omitempty"`   // "" when unauthenticated
	AuthMethod string    `json:"auth_method,omitempty"` // pat | oauth-m2m | token-exchange
	Scopes     []string  `json:"scopes,omitempty"`
	Method     string    `json:"method"`
	Path       string    `json:"path"`
	Status     int       `json:"status"`
	RequestID  string    `json:"request_id,omitempty"` // the caller's X-Request-Id
}

// auditLog keeps the most recent entries in a bounded buffer.
type auditLog struct {
	mu      sync.Mutex
	max     int
	seq     int64
	entries []AuditEntry
}

func newAuditLog(max int) *auditLog { return &auditLog{max: max} }

func (a *auditLog) add(e AuditEntry) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.seq++
	e.Seq = a.seq
	if len(a.entries) >= a.max {
		a.entries = slices.Delete(a.entries, 0, len(a.entries)-a.max+1)
	}
	a.entries = append(a.entries, e)
}

// since returns the entries with Seq > seq, oldest first.
func (a *auditLog) since(seq int64) []AuditEntry {
	a.mu.Lock()
	defer a.mu.Unlock()
	i, _ := slices.BinarySearchFunc(a.entries, seq+1, func(e AuditEntry, s int64) int {
		return int(e.Seq - s)
	})
	return slices.Clone(a.entries[i:])
}

// Audit returns the audit log, oldest first.
func (ws *Workspace) Audit() []AuditEntry { return ws.audit.since(0) }

// handleAudit serves GET /dev/audit[?since=seq]: a dev-only route, not
// authenticated and not itself audited.
func (ws *Workspace) handleAudit(w http.ResponseWriter, r *http.Request) {
	var since int64
	if s := r.URL.Query().Get("since"); s != "" {
		v, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			writeError(w, http.StatusBadRequest, codeInvalidParam, "since must be an integer sequence number")
			return
		}
		since = v
	}
	writeJSON(w, http.StatusOK, map[string]any{"entries": ws.audit.since(since)})
}

// AuditSince returns the entries with Seq > seq, oldest first, so a long
// run can read the bounded log in parts.
func (ws *Workspace) AuditSince(seq int64) []AuditEntry { return ws.audit.since(seq) }
