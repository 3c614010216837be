package devworkspace

import (
	"encoding/base64"
	"net/http"
)

func (ws *Workspace) registerSecretRoutes() {
	ws.routeConfig("GET /api/2.0/secrets/get", ws.handleGetSecret)
	ws.routeConfig("GET /api/2.0/secrets/list", ws.handleListSecrets)
	ws.routeConfig("GET /api/2.0/secrets/scopes/list", ws.handleListScopes)
}

// secretPermission returns p's permission on a scope ("" if none).
func (ws *Workspace) secretPermission(p *Principal, scope *SecretScopeConfig) string {
	best := ""
	rank := map[string]int{"READ": 1, "WRITE": 2, "MANAGE": 3}
	for _, a := range scope.ACLs {
		if a.Principal == p.Name && rank[a.Permission] > rank[best] {
			best = a.Permission
		}
	}
	return best
}

// secretScope finds a scope and checks READ, writing 404/403 otherwise.
func (ws *Workspace) secretScope(w http.ResponseWriter, r *http.Request) *SecretScopeConfig {
	name := r.URL.Query().Get("scope")
	if name == "" {
		writeError(w, http.StatusBadRequest, codeInvalidParam, "scope is required")
		return nil
	}
	for i := range ws.cfg.SecretScopes {
		s := &ws.cfg.SecretScopes[i]
		if s.Name != name {
			continue
		}
		p := callerFrom(r.Context()).Principal
		if ws.secretPermission(p, s) == "" {
			writeErr(w, &PermissionError{Principal: p.Name, Privilege: "READ", SecurableType: "secret scope", FullName: name})
			return nil
		}
		return s
	}
	writeError(w, http.StatusNotFound, codeNotFound, "secret scope %s does not exist", name)
	return nil
}

// handleGetSecret serves the secret value, base64-encoded.
func (ws *Workspace) handleGetSecret(w http.ResponseWriter, r *http.Request) {
	s := ws.secretScope(w, r)
	if s == nil {
		return
	}
	key := r.URL.Query().Get("key")
	for _, sec := range s.Secrets {
		if sec.Key == key {
			writeJSON(w, http.StatusOK, map[string]string{"key": key, "value": base64.StdEncoding.EncodeToString([]byte(sec.Value))})
			return
		}
	}
	writeError(w, http.StatusNotFound, codeNotFound, "secret %s does not exist in scope %s", key, s.Name)
}

func (ws *Workspace) handleListSecrets(w http.ResponseWriter, r *http.Request) {
	s := ws.secretScope(w, r)
	if s == nil {
		return
	}
	type meta struct {
		Key                  string `json:"key"`
		LastUpdatedTimestamp int64  `json:"last_updated_timestamp"`
	}
	out := []meta{}
	for _, sec := range s.Secrets {
		out = append(out, meta{Key: sec.Key, LastUpdatedTimestamp: 1704067200000})
	}
	writeJSON(w, http.StatusOK, map[string]any{"secrets": out})
}

func (ws *Workspace) handleListScopes(w http.ResponseWriter, r *http.Request) {
	p := callerFrom(r.Context()).Principal
	out := []map[string]string{}
	for i := range ws.cfg.SecretScopes {
		if ws.secretPermission(p, &ws.cfg.SecretScopes[i]) != "" {
			out = append(out, map[string]string{"name": ws.cfg.SecretScopes[i].Name, "backend_type": "DATABRICKS"})
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"scopes": out})
}
