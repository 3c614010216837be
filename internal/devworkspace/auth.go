package devworkspace

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/agentrt/agentrt/internal/scopes"
)

// Principal is a user or service principal of the workspace.
type Principal struct {
	Name             string // user name (alice@example.com) or application id (agent-sp)
	ID               string
	DisplayName      string
	ServicePrincipal bool
}

// Authentication methods recorded in Caller.Method and the audit log.
const (
	MethodPAT           = "pat"
	MethodOAuthM2M      = "oauth-m2m"
	MethodTokenExchange = "token-exchange"
)

// Caller is the authenticated identity of one request.
type Caller struct {
	Principal *Principal
	Method    string   // pat | oauth-m2m | token-exchange
	Scopes    []string // the token's scopes; PATs carry all-apis
}

// tokenInfo is what a bearer token stands for.
type tokenInfo struct {
	principal *Principal
	method    string
	scopes    []string
	expires   time.Time // zero: never (PATs)
}

// tokenStore maps bearer tokens to identities: configured PATs plus the
// opaque OAuth tokens the token endpoint issues.
type tokenStore struct {
	ws     *Workspace
	mu     sync.Mutex
	tokens map[string]*tokenInfo
}

func newTokenStore(ws *Workspace) *tokenStore {
	return &tokenStore{ws: ws, tokens: map[string]*tokenInfo{}}
}

func (ws *Workspace) loadIdentities() error {
	for _, u := range ws.cfg.Users {
		p := &Principal{Name: u.UserName, ID: u.ID, DisplayName: u.DisplayName}
		ws.principals[u.UserName] = p
		for _, t := range u.Tokens {
			if _, dup := ws.auth.tokens[t]; dup || t == "" {
				return fmt.Errorf("devworkspace: user %s: empty or duplicate token", u.UserName)
			}
			ws.auth.tokens[t] = &tokenInfo{principal: p, method: MethodPAT, scopes: []string{scopes.AllAPIs}}
		}
	}
	for _, sp := range ws.cfg.ServicePrincipals {
		ws.principals[sp.ApplicationID] = &Principal{Name: sp.ApplicationID, ID: sp.ID, DisplayName: sp.DisplayName, ServicePrincipal: true}
	}
	return nil
}

// principal returns the principal with this user name or application id.
func (ws *Workspace) principal(name string) *Principal { return ws.principals[name] }

var errNoToken = errors.New("no credentials: send Authorization: Bearer <token>")

// authenticate resolves the request's bearer token. Error texts never
// include the token.
func (s *tokenStore) authenticate(r *http.Request) (*Caller, error) {
	h := r.Header.Get("Authorization")
	tok, ok := strings.CutPrefix(h, "Bearer ")
	if !ok || strings.TrimSpace(tok) == "" {
		return nil, errNoToken
	}
	ti, err := s.lookup(strings.TrimSpace(tok))
	if err != nil {
		return nil, err
	}
	return &Caller{Principal: ti.principal, Method: ti.method, Scopes: slices.Clone(ti.scopes)}, nil
}

func (s *tokenStore) lookup(tok string) (*tokenInfo, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ti := s.tokens[tok]
	if ti == nil {
		return nil, errors.New("invalid access token")
	}
	if !ti.expires.IsZero() && !s.ws.now().Before(ti.expires) {
		delete(s.tokens, tok)
		return nil, errors.New("access token expired")
	}
	return ti, nil
}

// issue creates an opaque OAuth access token valid for ttl.
func (s *tokenStore) issue(p *Principal, method string, sc []string, ttl time.Duration) (string, time.Time) {
	var b [32]byte
	_, _ = rand.Read(b[:])
	tok := "dwo_" + base64.RawURLEncoding.EncodeToString(b[:])
	now := s.ws.now()
	exp := now.Add(ttl)
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.tokens) > 1024 {
		for k, v := range s.tokens { // sweep expired tokens now and then
			if !v.expires.IsZero() && !now.Before(v.expires) {
				delete(s.tokens, k)
			}
		}
	}
	s.tokens[tok] = &tokenInfo{principal: p, method: method, scopes: slices.Clone(sc), expires: exp}
	return tok, exp
}

// scimUser is the SCIM shape of /Me.
type scimUser struct {
	ID            string      `json:"id"`
	UserName      string      `json:"userName"`
	DisplayName   string      `json:"displayName,omitempty"`
	ApplicationID string      `json:"applicationId,omitempty"`
	Active        bool        `json:"active"`
	Emails        []scimEmail `json:"emails,omitempty"`
	Schemas       []string    `json:"schemas"`
}

type scimEmail struct {
	Value   string `json:"value"`
	Primary bool   `json:"primary"`
	Type    string `json:"type"`
}
