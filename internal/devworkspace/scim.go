package devworkspace

import "net/http"

// handleMe serves GET /api/2.0/preview/scim/v2/Me. A service principal's
// userName is its application id.
func (ws *Workspace) handleMe(w http.ResponseWriter, r *http.Request) {
	p := callerFrom(r.Context()).Principal
	u := scimUser{
		ID:          p.ID,
		UserName:    p.Name,
		DisplayName: p.DisplayName,
		Active:      true,
		Schemas:     []string{"urn:ietf:params:scim:schemas:core:2.0:User"},
	}
	if p.ServicePrincipal {
		u.ApplicationID = p.Name
		u.Schemas = []string{"urn:ietf:params:scim:schemas:core:2.0:ServicePrincipal"}
	} else {
		u.Emails = []scimEmail{{Value: p.Name, Primary: true, Type: "work"}}
	}
	writeJSON(w, http.StatusOK, u)
}
