package loader

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/agentrt/agentrt/agent"
	"github.com/agentrt/agentrt/internal/manifest"
)

// declared answers "ok" and declares its manifest in code.
type declared struct{}

func (declared) Predict(context.Context, *agent.Request) (*agent.Response, error) {
	return &agent.Response{Output: []agent.Item{agent.TextItem("msg_1", "ok")}}, nil
}

func (declared) Manifest() agent.Manifest {
	return agent.Manifest{Resources: []agent.Resource{{Type: agent.ServingEndpoint, Name: "databricks-claude"}}}
}

// streamDeclared declares its manifest on the streaming type that
// agent.FromStream wraps.
type streamDeclared struct{}

func (streamDeclared) PredictStream(ctx context.Context, _ *agent.Request, emit agent.Emit) error {
	return emit(agent.ItemDone(agent.TextItem("msg_1", "streamed")))
}

func (streamDeclared) Manifest() agent.Manifest {
	return agent.Manifest{UserAPIScopes: []string{"serving.serving-endpoints"}}
}

type badManifest struct{ declared }

func (badManifest) Manifest() agent.Manifest {
	return agent.Manifest{Resources: []agent.Resource{{Type: "warehouse", Name: "x"}}}
}

var errBroken = errors.New("model endpoint not configured")

func init() {
	agent.Register("loader-test-declared", func() (agent.Agent, error) { return declared{}, nil })
	agent.Register("loader-test-stream", func() (agent.Agent, error) { return agent.FromStream(streamDeclared{}), nil })
	agent.Register("loader-test-bad-manifest", func() (agent.Agent, error) { return badManifest{}, nil })
	agent.Register("loader-test-plain", func() (agent.Agent, error) { return struct{ agent.Agent }{declared{}}, nil })
	agent.Register("loader-test-broken", func() (agent.Agent, error) { return nil, errBroken })
	agent.Register("loader-test-nil", func() (agent.Agent, error) { return nil, nil })
}

func TestLoadRegistered(t *testing.T) {
	explicit := filepath.Join(t.TempDir(), "agent.yaml")
	writeFile(t, explicit, "auth_policy:\n  system_auth_policy: {}\n  user_auth_policy:\n    api_scopes: [sql]\n")
	tests := []struct {
		name, agent, manifestFile string
		wantSource                string
		wantScopes                []string
		wantResources             int
	}{
		{"manifest in code", "loader-test-declared", "", "code (agent.Manifester)", nil, 1},
		{"manifest on the wrapped stream agent", "loader-test-stream", "", "code (agent.Manifester)", []string{"serving.serving-endpoints"}, 0},
		{"no manifest", "loader-test-plain", "", "none (empty manifest)", nil, 0},
		{"explicit file beats code", "loader-test-declared", explicit, "file " + explicit + " (--manifest)", []string{"sql"}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l, err := Load(Options{Agent: tt.agent, ManifestFile: tt.manifestFile})
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			if l.Plugin || l.Name != tt.agent || l.Agent == nil {
				t.Errorf("Loaded = %+v", l)
			}
			if l.ManifestSource != tt.wantSource {
				t.Errorf("ManifestSource = %q, want %q", l.ManifestSource, tt.wantSource)
			}
			if len(l.Manifest.Resources) != tt.wantResources || strings.Join(l.Manifest.UserAPIScopes, ",") != strings.Join(tt.wantScopes, ",") {
				t.Errorf("Manifest = %+v", l.Manifest)
			}
		})
	}
}

func TestLoadRegisteredErrors(t *testing.T) {
	tests := []struct {
		name, agent, manifestFile string
		check                     func(t *testing.T, err error)
	}{
		{"empty", "", "", func(t *testing.T, err error) {
			if err == nil || !strings.Contains(err.Error(), "--agent") {
				t.Errorf("err = %v", err)
			}
		}},
		{"unknown name lists the registered ones", "nosuch", "", func(t *testing.T, err error) {
			var ue *UnknownAgentError
			if !errors.As(err, &ue) || !strings.Contains(err.Error(), "loader-test-declared") {
				t.Errorf("err = %v, want an UnknownAgentError naming the registered agents", err)
			}
		}},
		{"constructor fails", "loader-test-broken", "", func(t *testing.T, err error) {
			if !errors.Is(err, errBroken) || !strings.Contains(err.Error(), `agent "loader-test-broken"`) {
				t.Errorf("err = %v", err)
			}
		}},
		{"constructor returns nil", "loader-test-nil", "", func(t *testing.T, err error) {
			if err == nil || !strings.Contains(err.Error(), "nil agent") {
				t.Errorf("err = %v", err)
			}
		}},
		{"invalid manifest in code", "loader-test-bad-manifest", "", func(t *testing.T, err error) {
			var me *manifest.Error
			if !errors.As(err, &me) || !strings.Contains(err.Error(), "code (agent.Manifester)") {
				t.Errorf("err = %v, want a ManifestError naming its source", err)
			}
		}},
		{"missing manifest file", "loader-test-declared", "/nonexistent/agent.yaml", func(t *testing.T, err error) {
			if err == nil || !strings.Contains(err.Error(), "--manifest") {
				t.Errorf("err = %v", err)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Load(Options{Agent: tt.agent, ManifestFile: tt.manifestFile})
			tt.check(t, err)
		})
	}
}

func TestIsPluginPath(t *testing.T) {
	for s, want := range map[string]bool{
		"echo": false, "my-agent": false, "agent.v2": false,
		"agent.so": true, "./agent": true, "/plugins/agent.so": true, "bin/x": true,
	} {
		if got := IsPluginPath(s); got != want {
			t.Errorf("IsPluginPath(%q) = %v, want %v", s, got, want)
		}
	}
}

func ExampleLoad() {
	l, err := Load(Options{Agent: "loader-test-declared"})
	if err != nil {
		panic(err)
	}
	fmt.Println(l.Name, "manifest from", l.ManifestSource)
	// Output: loader-test-declared manifest from code (agent.Manifester)
}
