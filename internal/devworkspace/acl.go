package devworkspace

import (
	"net/http"
	"slices"
	"strings"
)

// Unity Catalog privileges the dev workspace enforces.
const (
	PrivUseCatalog    = "USE_CATALOG"
	PrivUseSchema     = "USE_SCHEMA"
	PrivSelect        = "SELECT"
	PrivExecute       = "EXECUTE"
	PrivUseConnection = "USE_CONNECTION"
	PrivAll           = "ALL_PRIVILEGES"
)

var securableTypes = []string{"catalog", "schema", "table", "function", "connection", "volume", "model"}

func validSecurableType(t string) bool { return slices.Contains(securableTypes, strings.ToLower(t)) }

// levelRank orders workspace-object permission levels; a higher level
// includes the lower ones. 0 means unknown.
func levelRank(level string) int {
	switch level {
	case "CAN_VIEW", "CAN_READ":
		return 1
	case "CAN_QUERY", "CAN_USE", "CAN_RUN", "CAN_ATTACH_TO", "CAN_RESTART":
		return 2
	case "CAN_EDIT":
		return 3
	case "CAN_MANAGE":
		return 4
	case "IS_OWNER":
		return 5
	}
	return 0
}

type securable struct{ typ, name string } // typ lower case, name lower case

// acl holds UC grants and workspace-object permissions; it is read-only
// after construction.
type acl struct {
	grants map[string]map[securable][]string       // principal → securable → privileges
	perms  map[string]map[string]map[string]string // object type → id → principal → level
}

func newACL(cfg *Config) *acl {
	a := &acl{grants: map[string]map[securable][]string{}, perms: map[string]map[string]map[string]string{}}
	for _, g := range cfg.Grants {
		m := a.grants[g.Principal]
		if m == nil {
			m = map[securable][]string{}
			a.grants[g.Principal] = m
		}
		k := securable{strings.ToLower(g.SecurableType), strings.ToLower(g.FullName)}
		m[k] = append(m[k], g.Privileges...)
	}
	for _, p := range cfg.Permissions {
		byID := a.perms[p.ObjectType]
		if byID == nil {
			byID = map[string]map[string]string{}
			a.perms[p.ObjectType] = byID
		}
		if byID[p.ObjectID] == nil {
			byID[p.ObjectID] = map[string]string{}
		}
		if levelRank(p.Level) > levelRank(byID[p.ObjectID][p.Principal]) {
			byID[p.ObjectID][p.Principal] = p.Level
		}
	}
	return a
}

// ancestors lists a securable and the catalog/schema it inherits from,
// outermost first.
func ancestors(typ, fullName string) []securable {
	typ, fullName = strings.ToLower(typ), strings.ToLower(fullName)
	parts := strings.Split(fullName, ".")
	switch {
	case typ == "catalog" || typ == "connection":
		return []securable{{typ, fullName}}
	case typ == "schema" && len(parts) == 2:
		return []securable{{"catalog", parts[0]}, {"schema", fullName}}
	case len(parts) == 3:
		return []securable{{"catalog", parts[0]}, {"schema", parts[0] + "." + parts[1]}, {typ, fullName}}
	}
	return []securable{{typ, fullName}}
}

// effectivePrivilege is one privilege with where it was granted.
type effectivePrivilege struct {
	Privilege         string `json:"privilege"`
	InheritedFromType string `json:"inherited_from_type,omitempty"`
	InheritedFromName string `json:"inherited_from_name,omitempty"`
}

// effective lists principal's privileges on a securable, inherited ones
// included.
func (a *acl) effective(principal, typ, fullName string) []effectivePrivilege {
	var out []effectivePrivilege
	chain := ancestors(typ, fullName)
	self := chain[len(chain)-1]
	for _, s := range chain {
		for _, priv := range a.grants[principal][s] {
			e := effectivePrivilege{Privilege: priv}
			if s != self {
				e.InheritedFromType, e.InheritedFromName = strings.ToUpper(s.typ), s.name
			}
			out = append(out, e)
		}
	}
	return out
}

// has reports whether principal holds priv on the securable, directly, by
// inheritance or through ALL_PRIVILEGES.
func (a *acl) has(principal, priv, typ, fullName string) bool {
	for _, s := range ancestors(typ, fullName) {
		for _, g := range a.grants[principal][s] {
			if g == priv || g == PrivAll {
				return true
			}
		}
	}
	return false
}

// checkUC checks the Unity Catalog access rule for using a securable:
// USE_CATALOG on its catalog, USE_SCHEMA on its schema, and priv on it.
// It returns a *PermissionError naming the first missing privilege.
func (a *acl) checkUC(p *Principal, priv, typ, fullName string) error {
	typ, fullName = strings.ToLower(typ), strings.ToLower(fullName)
	chain := ancestors(typ, fullName)
	for _, s := range chain {
		need := priv
		switch {
		case s.typ == typ && s.name == fullName:
		case s.typ == "catalog":
			need = PrivUseCatalog
		case s.typ == "schema":
			need = PrivUseSchema
		}
		if !a.has(p.Name, need, s.typ, s.name) {
			return &PermissionError{Principal: p.Name, Privilege: need, SecurableType: s.typ, FullName: s.name}
		}
	}
	return nil
}

// level returns the highest permission level principal holds on an object.
func (a *acl) level(principal, objectType, id string) string {
	best := ""
	for _, oid := range []string{id, "*"} {
		if l := a.perms[objectType][oid][principal]; levelRank(l) > levelRank(best) {
			best = l
		}
	}
	return best
}

// permissionLevel returns p's highest level on a workspace object ("" if none).
func (ws *Workspace) permissionLevel(p *Principal, objectType, id string) string {
	return ws.acl.level(p.Name, objectType, id)
}

// checkPermission returns a *PermissionError unless p holds level (or a
// higher one) on the object.
func (ws *Workspace) checkPermission(p *Principal, objectType, id, level string) error {
	if levelRank(ws.permissionLevel(p, objectType, id)) >= levelRank(level) {
		return nil
	}
	return &PermissionError{Principal: p.Name, Privilege: level, SecurableType: objectType, FullName: id}
}

// requirePermission writes a 403 naming the object and level unless the
// caller holds it.
func (ws *Workspace) requirePermission(w http.ResponseWriter, r *http.Request, objectType, id, level string) bool {
	if err := ws.checkPermission(callerFrom(r.Context()).Principal, objectType, id, level); err != nil {
		writeErr(w, err)
		return false
	}
	return true
}

// checkUCAccess combines existence (404 first) and the UC access rule.
func (ws *Workspace) checkUCAccess(p *Principal, priv, typ, fullName string) error {
	if !ws.catalog.exists(typ, fullName) {
		return &NotFoundError{Kind: strings.ToLower(typ), Name: fullName}
	}
	return ws.acl.checkUC(p, priv, typ, fullName)
}

// requireUC checks that the securable exists (else 404) and that the caller
// holds USE_CATALOG, USE_SCHEMA and priv on it (else 403 naming the
// securable and the missing privilege).
func (ws *Workspace) requireUC(w http.ResponseWriter, r *http.Request, priv string, securableType, fullName string) bool {
	if err := ws.checkUCAccess(callerFrom(r.Context()).Principal, priv, securableType, fullName); err != nil {
		writeErr(w, err)
		return false
	}
	return true
}

// objectExists reports whether a workspace object the core knows exists;
// for object types owned elsewhere (serving, Vector Search) it reports true
// and leaves existence to the configured ACL.
func (ws *Workspace) objectExists(objectType, id string) bool {
	switch objectType {
	case "warehouses", "sql/warehouses":
		return ws.warehouseExists(id)
	case "genie":
		return ws.genieSpace(id) != nil
	}
	return true
}

// handleObjectPermissions serves GET /api/2.0/permissions/{type}/{id}: the
// object's ACL from the configuration. Any permission on the object lets
// the caller read it. Objects are identified by name (serving endpoints
// too).
func (ws *Workspace) handleObjectPermissions(w http.ResponseWriter, r *http.Request) {
	typ, id := r.PathValue("object_type"), r.PathValue("object_id")
	if typ == "sql" { // /api/2.0/permissions/sql/warehouses/{id}
		typ, id = "warehouses", strings.TrimPrefix(id, "warehouses/")
	}
	if !ws.objectExists(typ, id) {
		writeError(w, http.StatusNotFound, codeNotFound, "%s %s does not exist", typ, id)
		return
	}
	p := callerFrom(r.Context()).Principal
	if ws.permissionLevel(p, typ, id) == "" {
		writeErr(w, &PermissionError{Principal: p.Name, Privilege: "CAN_VIEW", SecurableType: typ, FullName: id})
		return
	}
	type level struct {
		PermissionLevel     string   `json:"permission_level"`
		Inherited           bool     `json:"inherited"`
		InheritedFromObject []string `json:"inherited_from_object,omitempty"`
	}
	names := make([]string, 0, len(ws.principals))
	for n := range ws.principals {
		names = append(names, n)
	}
	slices.Sort(names)
	acl := []map[string]any{}
	for _, n := range names {
		var levels []level
		if l := ws.acl.perms[typ][id][n]; l != "" {
			levels = append(levels, level{PermissionLevel: l})
		}
		if l := ws.acl.perms[typ]["*"][n]; l != "" {
			levels = append(levels, level{PermissionLevel: l, Inherited: true, InheritedFromObject: []string{"/" + typ + "/"}})
		}
		if len(levels) == 0 {
			continue
		}
		e := map[string]any{"all_permissions": levels, "display_name": ws.principals[n].DisplayName}
		if ws.principals[n].ServicePrincipal {
			e["service_principal_name"] = n
		} else {
			e["user_name"] = n
		}
		acl = append(acl, e)
	}
	writeJSON(w, http.StatusOK, map[string]any{"object_id": "/" + typ + "/" + id, "object_type": strings.TrimSuffix(typ, "s"), "access_control_list": acl})
}
