package devworkspace

import (
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"sync"

	iapps "github.com/agentrt/agentrt/internal/apps"
	"github.com/databricks/databricks-sdk-go/service/apps"
)

// The Databricks Apps API, as the deploy path calls it (Apps.Create,
// Apps.Get, Apps.Deploy and its wait): apps are kept as given, decoded
// strictly into apps.App (an unknown field or permission is a 400), and
// come up ACTIVE and RUNNING at once; a deployment SUCCEEDS at once and
// becomes the app's active one. Nothing runs: it records what would be
// deployed, for the tests of the deploy path.

// appStore holds the created apps by name, in creation order.
type appStore struct {
	mu    sync.Mutex
	order []string
	apps  map[string]*apps.App
	deps  map[string][]*apps.AppDeployment
	seq   int
}

func (ws *Workspace) registerAppsRoutes() {
	s := &appStore{apps: map[string]*apps.App{}, deps: map[string][]*apps.AppDeployment{}}
	ws.routeConfig("POST /api/2.0/apps", s.create(ws))
	ws.routeConfig("GET /api/2.0/apps", s.list)
	ws.routeConfig("GET /api/2.0/apps/{name}", s.get)
	ws.routeConfig("PATCH /api/2.0/apps/{name}", s.update(ws))
	ws.routeConfig("POST /api/2.0/apps/{name}/deployments", s.deploy(ws))
	ws.routeConfig("GET /api/2.0/apps/{name}/deployments", s.listDeployments)
	ws.routeConfig("GET /api/2.0/apps/{name}/deployments/{id}", s.getDeployment)
}

// readApp decodes a request body strictly into apps.App.
func readApp(w http.ResponseWriter, r *http.Request) (*apps.App, bool) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 1<<20))
	if err != nil {
		writeError(w, http.StatusBadRequest, codeBadRequest, "invalid body: %v", err)
		return nil, false
	}
	a, err := iapps.DecodeApp(body)
	if err != nil {
		writeError(w, http.StatusBadRequest, codeInvalidParam, "%v", err)
		return nil, false
	}
	return a, true
}

func (s *appStore) create(ws *Workspace) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		a, ok := readApp(w, r)
		if !ok {
			return
		}
		if a.Name == "" {
			writeError(w, http.StatusBadRequest, codeInvalidParam, "name is required")
			return
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		if _, dup := s.apps[a.Name]; dup {
			writeError(w, http.StatusConflict, "RESOURCE_ALREADY_EXISTS", "app with name %s already exists", a.Name)
			return
		}
		s.seq++
		now := ws.now().UTC().Format("2006-01-02T15:04:05Z")
		a.Id = "dev-app-" + strconv.Itoa(s.seq)
		a.Url = ws.baseURL(r) + "/apps/" + a.Name
		a.Creator = callerFrom(r.Context()).Principal.Name
		a.CreateTime, a.UpdateTime = now, now
		a.ServicePrincipalClientId = SPClientID
		a.EffectiveUserApiScopes = slices.Clone(a.UserApiScopes)
		a.ComputeStatus = &apps.ComputeStatus{State: apps.ComputeStateActive}
		a.AppStatus = &apps.ApplicationStatus{State: apps.ApplicationStateRunning}
		s.apps[a.Name] = a
		s.order = append(s.order, a.Name)
		writeJSON(w, http.StatusOK, a)
	}
}

// update replaces the definition the deploy path manages: description,
// resources and user_api_scopes.
func (s *appStore) update(ws *Workspace) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		in, ok := readApp(w, r)
		if !ok {
			return
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		a := s.app(w, r.PathValue("name"))
		if a == nil {
			return
		}
		a.Description, a.Resources, a.UserApiScopes = in.Description, in.Resources, in.UserApiScopes
		a.EffectiveUserApiScopes = slices.Clone(in.UserApiScopes)
		a.UpdateTime = ws.now().UTC().Format("2006-01-02T15:04:05Z")
		writeJSON(w, http.StatusOK, a)
	}
}

// app returns the named app or writes a 404.
func (s *appStore) app(w http.ResponseWriter, name string) *apps.App {
	a := s.apps[name]
	if a == nil {
		writeErr(w, &NotFoundError{Kind: "app", Name: name})
	}
	return a
}

func (s *appStore) get(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if a := s.app(w, r.PathValue("name")); a != nil {
		writeJSON(w, http.StatusOK, a)
	}
}

func (s *appStore) list(w http.ResponseWriter, _ *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]*apps.App, 0, len(s.order))
	for _, n := range s.order {
		out = append(out, s.apps[n])
	}
	writeJSON(w, http.StatusOK, apps.ListAppsResponse{Apps: derefAll(out)})
}

func derefAll[T any](in []*T) []T {
	out := make([]T, len(in))
	for i, p := range in {
		out[i] = *p
	}
	return out
}

func (s *appStore) deploy(ws *Workspace) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var d apps.AppDeployment
		if !decodeBody(w, r, &d) {
			return
		}
		if d.SourceCodePath == "" && d.GitSource == nil {
			writeError(w, http.StatusBadRequest, codeInvalidParam, "source_code_path is required")
			return
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		a := s.app(w, r.PathValue("name"))
		if a == nil {
			return
		}
		s.seq++
		now := ws.now().UTC().Format("2006-01-02T15:04:05Z")
		d.DeploymentId = fmt.Sprintf("dev-deployment-%d", s.seq)
		d.Creator = callerFrom(r.Context()).Principal.Name
		d.CreateTime, d.UpdateTime = now, now
		if d.Mode == "" {
			d.Mode = apps.AppDeploymentModeSnapshot
		}
		d.Status = &apps.AppDeploymentStatus{State: apps.AppDeploymentStateSucceeded, Message: "dev workspace: recorded, not run"}
		s.deps[a.Name] = append(s.deps[a.Name], &d)
		a.ActiveDeployment = &d
		a.DefaultSourceCodePath = d.SourceCodePath
		a.UpdateTime = now
		writeJSON(w, http.StatusOK, &d)
	}
}

func (s *appStore) listDeployments(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if a := s.app(w, r.PathValue("name")); a != nil {
		writeJSON(w, http.StatusOK, apps.ListAppDeploymentsResponse{AppDeployments: derefAll(s.deps[a.Name])})
	}
}

func (s *appStore) getDeployment(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a := s.app(w, r.PathValue("name"))
	if a == nil {
		return
	}
	id := r.PathValue("id")
	for _, d := range s.deps[a.Name] {
		if d.DeploymentId == id {
			writeJSON(w, http.StatusOK, d)
			return
		}
	}
	writeErr(w, &NotFoundError{Kind: "app deployment", Name: id})
}
