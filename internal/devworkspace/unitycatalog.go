package devworkspace

import (
	"encoding/json"
	"fmt"
	"hash/fnv"
	"net/http"
	"slices"
	"strings"
)

func (ws *Workspace) registerUCRoutes() {
	ws.route("GET /api/2.1/unity-catalog/tables/{full_name}", ws.handleGetTable)
	ws.route("GET /api/2.1/unity-catalog/functions/{name}", ws.handleGetFunction)
	ws.route("GET /api/2.1/unity-catalog/connections/{name}", ws.handleGetConnection)
	ws.route("GET /api/2.1/unity-catalog/effective-permissions/{securable_type}/{full_name}", ws.handleGrants(true))
	ws.route("GET /api/2.1/unity-catalog/permissions/{securable_type}/{full_name}", ws.handleGrants(false))
}

// ucOwner owns every securable of the dev workspace.
const ucOwner = "alice@example.com"

type columnInfo struct {
	Name     string `json:"name"`
	TypeName string `json:"type_name"`
	TypeText string `json:"type_text"`
	TypeJSON string `json:"type_json"`
	Position int    `json:"position"`
	Nullable bool   `json:"nullable"`
	Comment  string `json:"comment,omitempty"`
}

// ucTypeName maps a configured Databricks type to UC's ColumnTypeName.
func ucTypeName(t string) string {
	if n := typeName(sqliteDecl(t)); n != "" {
		return n
	}
	return "STRING"
}

// sparkTypes are the type names of UC's type_json (Spark's JSON schema).
var sparkTypes = map[string]string{"LONG": "long", "INT": "integer", "DOUBLE": "double", "STRING": "string",
	"DATE": "date", "TIMESTAMP": "timestamp", "BOOLEAN": "boolean"}

func columnInfos(cols []ColumnConfig) []columnInfo {
	out := make([]columnInfo, len(cols))
	for i, c := range cols {
		tn := ucTypeName(c.Type)
		tj, _ := json.Marshal(map[string]any{"name": c.Name, "type": sparkTypes[tn], "nullable": true, "metadata": map[string]any{}})
		out[i] = columnInfo{Name: c.Name, TypeName: tn, TypeText: typeText(tn), TypeJSON: string(tj), Position: i, Nullable: true, Comment: c.Comment}
	}
	return out
}

func stableID(name string) string {
	h := fnv.New128a()
	h.Write([]byte(name))
	b := h.Sum(nil)
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

func splitName(full string) (catalog, schema, name string) {
	parts := strings.SplitN(full, ".", 3)
	for len(parts) < 3 {
		parts = append([]string{""}, parts...)
	}
	return parts[0], parts[1], parts[2]
}

// handleGetTable follows the UC rule: USE_CATALOG, USE_SCHEMA and SELECT.
func (ws *Workspace) handleGetTable(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("full_name")
	if !ws.requireUC(w, r, PrivSelect, "table", name) {
		return
	}
	t := ws.catalog.table(name)
	c, s, n := splitName(t.FullName)
	ms := t.Created.UnixMilli()
	writeJSON(w, http.StatusOK, map[string]any{
		"name": n, "catalog_name": c, "schema_name": s, "full_name": t.FullName,
		"table_type": "MANAGED", "data_source_format": "DELTA", "columns": columnInfos(t.Columns),
		"owner": ucOwner, "comment": t.Comment, "table_id": stableID(t.FullName),
		"storage_location": "dev://tables/" + t.FullName, "created_at": ms, "updated_at": ms,
		"created_by": ucOwner, "securable_type": "TABLE",
	})
}

// handleGetFunction needs EXECUTE (plus USE_CATALOG/USE_SCHEMA).
func (ws *Workspace) handleGetFunction(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	if !ws.requireUC(w, r, PrivExecute, "function", name) {
		return
	}
	f := ws.catalog.function(name)
	c, s, n := splitName(f.cfg.FullName)
	params := make([]map[string]any, len(f.cfg.Parameters))
	for i, p := range f.cfg.Parameters {
		tn := ucTypeName(p.Type)
		params[i] = map[string]any{"name": p.Name, "type_name": tn, "type_text": typeText(tn), "position": i, "comment": p.Comment, "parameter_mode": "IN", "parameter_type": "PARAM"}
	}
	info := map[string]any{
		"name": n, "catalog_name": c, "schema_name": s, "full_name": f.cfg.FullName,
		"input_params": map[string]any{"parameters": params},
		"routine_body": "SQL", "routine_definition": strings.TrimSpace(f.cfg.Definition),
		"comment": f.cfg.Comment, "owner": ucOwner, "is_deterministic": true,
		"security_type": "DEFINER", "sql_data_access": "READS_SQL_DATA", "parameter_style": "S",
		"specific_name": n, "function_id": stableID(f.cfg.FullName), "securable_type": "FUNCTION",
	}
	if f.isTable {
		info["data_type"] = "TABLE_TYPE"
		cols := columnInfos(f.cfg.ReturnColumns)
		ret := make([]map[string]any, len(cols))
		texts := make([]string, len(cols))
		for i, col := range cols {
			ret[i] = map[string]any{"name": col.Name, "type_name": col.TypeName, "type_text": col.TypeText, "position": i, "parameter_mode": "IN", "parameter_type": "COLUMN"}
			texts[i] = col.Name + " " + col.TypeText
		}
		info["return_params"] = map[string]any{"parameters": ret}
		info["full_data_type"] = "TABLE(" + strings.Join(texts, ", ") + ")"
	} else {
		tn := ucTypeName(f.cfg.Returns)
		info["data_type"], info["full_data_type"] = tn, typeText(tn)
	}
	writeJSON(w, http.StatusOK, info)
}

// handleGetConnection needs USE_CONNECTION; the URL is resolved against the
// workspace's own address when it points at a server the workspace hosts.
func (ws *Workspace) handleGetConnection(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	if !ws.requireUC(w, r, PrivUseConnection, "connection", name) {
		return
	}
	ws.catalog.mu.RLock()
	c := *ws.catalog.connections[strings.ToLower(name)]
	ws.catalog.mu.RUnlock()
	url := ws.resolveURL(r, c.URL)
	opts := map[string]string{}
	for k, v := range c.Options {
		if k != "bearer_token" && k != "client_secret" { // credentials are never returned
			opts[k] = v
		}
	}
	if h, ok := strings.CutPrefix(url, "http://"); ok {
		opts["host"] = strings.SplitN(h, "/", 2)[0]
	} else if h, ok := strings.CutPrefix(url, "https://"); ok {
		opts["host"] = strings.SplitN(h, "/", 2)[0]
	}
	typ := c.ConnectionType
	if typ == "" {
		typ = "HTTP"
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"name": c.Name, "full_name": c.Name, "connection_type": typ, "credential_type": "BEARER_TOKEN",
		"url": url, "options": opts, "owner": ucOwner, "read_only": false, "comment": c.Comment,
		"securable_type": "CONNECTION", "connection_id": stableID(c.Name),
	})
}

// handleGrants serves direct (permissions/…) or effective
// (effective-permissions/…) grants. The securable type is case-insensitive.
// ?principal= narrows to one principal.
func (ws *Workspace) handleGrants(effective bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		typ := strings.ToLower(r.PathValue("securable_type"))
		name := r.PathValue("full_name")
		if !validSecurableType(typ) {
			writeError(w, http.StatusBadRequest, codeInvalidParam, "unknown securable type %s", r.PathValue("securable_type"))
			return
		}
		if !ws.catalog.exists(typ, name) {
			writeError(w, http.StatusNotFound, codeNotFound, "%s '%s' does not exist", typ, name)
			return
		}
		want := r.URL.Query().Get("principal")
		var names []string
		for n := range ws.principals {
			if want == "" || n == want {
				names = append(names, n)
			}
		}
		slices.Sort(names)
		out := []map[string]any{}
		for _, n := range names {
			if effective {
				if privs := ws.acl.effective(n, typ, name); len(privs) > 0 {
					out = append(out, map[string]any{"principal": n, "privileges": privs})
				}
				continue
			}
			privs := ws.acl.grants[n][securable{typ, strings.ToLower(name)}]
			if len(privs) > 0 {
				out = append(out, map[string]any{"principal": n, "privileges": privs})
			}
		}
		writeJSON(w, http.StatusOK, map[string]any{"privilege_assignments": out})
	}
}
