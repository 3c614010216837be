package devworkspace

import (
	"crypto/subtle"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/agentrt/agentrt/internal/scopes"
)

// OAuth grant and token types the token endpoint understands.
const (
	grantClientCredentials = "client_credentials"
	grantTokenExchange     = "urn:ietf:params:oauth:grant-type:token-exchange"
	tokenTypeAccessToken   = "urn:ietf:params:oauth:token-type:access_token"
	tokenTypeJWT           = "urn:ietf:params:oauth:token-type:jwt"
	tokenTypeIDToken       = "urn:ietf:params:oauth:token-type:id_token"
)

func (ws *Workspace) registerOAuthRoutes() {
	ws.routePublic("GET /.well-known/databricks-config", ws.handleHostMetadata)
	ws.routePublic("GET /oidc/.well-known/oauth-authorization-server", ws.handleOIDCDiscovery)
	ws.routePublic("POST /oidc/v1/token", ws.handleToken)
}

// handleHostMetadata serves the SDK's host metadata discovery.
func (ws *Workspace) handleHostMetadata(w http.ResponseWriter, r *http.Request) {
	base := ws.baseURL(r)
	writeJSON(w, http.StatusOK, map[string]any{
		"oidc_endpoint": base + "/oidc",
		"workspace_id":  ws.cfg.WorkspaceID,
		"cloud":         "AWS",
		"host_type":     "workspace",
		"token_federation_default_oidc_audiences": []string{base + "/oidc/v1/token"},
	})
}

func (ws *Workspace) handleOIDCDiscovery(w http.ResponseWriter, r *http.Request) {
	base := ws.baseURL(r) + "/oidc"
	writeJSON(w, http.StatusOK, map[string]any{
		"issuer":                                base,
		"authorization_endpoint":                base + "/v1/authorize",
		"token_endpoint":                        base + "/v1/token",
		"grant_types_supported":                 []string{grantClientCredentials, grantTokenExchange},
		"token_endpoint_auth_methods_supported": []string{"client_secret_basic", "client_secret_post"},
		"scopes_supported":                      []string{scopes.AllAPIs},
	})
}

// tokenResponse is the RFC 6749 / 8693 success body.
type tokenResponse struct {
	AccessToken     string `json:"access_token"`
	TokenType       string `json:"token_type"`
	ExpiresIn       int64  `json:"expires_in"`
	Scope           string `json:"scope"`
	IssuedTokenType string `json:"issued_token_type,omitempty"`
}

// oauthError writes an RFC 6749 error that also carries the workspace's
// {"error_code","message"} so both kinds of client read it.
func oauthError(w http.ResponseWriter, status int, oauthCode, msg string) {
	code := codeInvalidParam
	switch status {
	case http.StatusUnauthorized:
		code = codeUnauthenticated
	case http.StatusForbidden:
		code = codePermissionDenied
	}
	writeJSON(w, status, map[string]string{
		"error": oauthCode, "error_description": msg,
		"error_code": code, "message": msg,
	})
}

// handleToken is POST /oidc/v1/token. It accepts:
//   - client_credentials for a service principal (HTTP Basic or form
//     client_id/client_secret); scope defaults to all-apis;
//   - token-exchange of a workspace token (subject_token_type access_token):
//     the new token has the requested scopes, which must be a subset of the
//     subject's (all-apis covers every scope); its lifetime never exceeds the
//     subject's;
//   - token-exchange of a workload-identity token (subject_token_type jwt or
//     id_token), as the SDK's env-oidc/file-oidc send it: the subject token
//     must equal a configured federation token for client_id (no signature
//     checks: it is a shared dev value); a subject that is a workspace token
//     is exchanged as above.
func (ws *Workspace) handleToken(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 1<<20)
	if err := r.ParseForm(); err != nil {
		oauthError(w, http.StatusBadRequest, "invalid_request", "malformed form body")
		return
	}
	requested, err := parseScopes(r.PostForm.Get("scope"))
	if err != nil {
		oauthError(w, http.StatusBadRequest, "invalid_scope", err.Error())
		return
	}
	switch gt := r.PostForm.Get("grant_type"); gt {
	case grantClientCredentials:
		ws.clientCredentials(w, r, requested)
	case grantTokenExchange:
		switch r.PostForm.Get("subject_token_type") {
		case tokenTypeAccessToken, "":
			ws.exchangeToken(w, r, requested)
		case tokenTypeJWT, tokenTypeIDToken:
			ws.federate(w, r, requested)
		default:
			oauthError(w, http.StatusBadRequest, "invalid_request", "unsupported subject_token_type")
		}
	case "":
		oauthError(w, http.StatusBadRequest, "invalid_request", "grant_type is required")
	default:
		oauthError(w, http.StatusBadRequest, "unsupported_grant_type", "unsupported grant_type "+gt)
	}
}

// parseScopes splits a space-separated scope parameter; empty means nil.
func parseScopes(s string) ([]string, error) {
	var out []string
	for _, f := range strings.Fields(s) {
		if f == "offline_access" { // refresh tokens are not issued; ignore the request
			continue
		}
		if !scopes.Known(f) {
			return nil, badRequest("unknown scope %q", f)
		}
		if !slices.Contains(out, f) {
			out = append(out, f)
		}
	}
	return out, nil
}

func (ws *Workspace) clientCredentials(w http.ResponseWriter, r *http.Request, requested []string) {
	id, secret, ok := r.BasicAuth()
	if !ok {
		id, secret = r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
	}
	var sp *ServicePrincipalConfig
	for i := range ws.cfg.ServicePrincipals {
		if ws.cfg.ServicePrincipals[i].ApplicationID == id {
			sp = &ws.cfg.ServicePrincipals[i]
		}
	}
	if sp == nil || sp.Secret == "" || subtle.ConstantTimeCompare([]byte(sp.Secret), []byte(secret)) != 1 {
		oauthError(w, http.StatusUnauthorized, "invalid_client", "invalid client credentials")
		return
	}
	if len(requested) == 0 {
		requested = []string{scopes.AllAPIs}
	}
	ws.writeToken(w, r, ws.principal(id), MethodOAuthM2M, requested, ws.ttl, "")
}

func (ws *Workspace) exchangeToken(w http.ResponseWriter, r *http.Request, requested []string) {
	subject := r.PostForm.Get("subject_token")
	if subject == "" {
		oauthError(w, http.StatusBadRequest, "invalid_request", "subject_token is required")
		return
	}
	ti, err := ws.auth.lookup(subject)
	if err != nil {
		oauthError(w, http.StatusBadRequest, "invalid_grant", "subject_token: "+err.Error())
		return
	}
	if len(requested) == 0 {
		requested = ti.scopes
	}
	for _, s := range requested {
		if !slices.Contains(ti.scopes, s) && !slices.Contains(ti.scopes, scopes.AllAPIs) {
			oauthError(w, http.StatusBadRequest, "invalid_scope",
				"requested scope "+s+" exceeds the subject token's scopes")
			return
		}
	}
	ttl := ws.ttl
	if !ti.expires.IsZero() {
		ttl = min(ttl, ti.expires.Sub(ws.now()))
	}
	ws.writeToken(w, r, ti.principal, MethodTokenExchange, requested, ttl, tokenTypeAccessToken)
}

func (ws *Workspace) federate(w http.ResponseWriter, r *http.Request, requested []string) {
	id, subject := r.PostForm.Get("client_id"), r.PostForm.Get("subject_token")
	for _, f := range ws.cfg.Federation {
		if f.ClientID == id && subtle.ConstantTimeCompare([]byte(f.Token), []byte(subject)) == 1 {
			if len(requested) == 0 {
				requested = []string{scopes.AllAPIs}
			}
			ws.writeToken(w, r, ws.principal(id), MethodTokenExchange, requested, ws.ttl, tokenTypeAccessToken)
			return
		}
	}
	if _, err := ws.auth.lookup(subject); err == nil {
		// A workspace token sent as a JWT (Databricks OAuth tokens are
		// JWTs): an ordinary exchange for the token's own principal.
		ws.exchangeToken(w, r, requested)
		return
	}
	oauthError(w, http.StatusUnauthorized, "invalid_grant", "subject_token is not a trusted workload identity for client_id")
}

func (ws *Workspace) writeToken(w http.ResponseWriter, r *http.Request, p *Principal, method string, sc []string, ttl time.Duration, issuedType string) {
	auditAs(r, p.Name, method, sc)
	tok, exp := ws.auth.issue(p, method, sc, ttl)
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, tokenResponse{
		AccessToken:     tok,
		TokenType:       "Bearer",
		ExpiresIn:       int64(exp.Sub(ws.now()).Round(time.Second) / time.Second),
		Scope:           strings.Join(sc, " "),
		IssuedTokenType: issuedType,
	})
}
