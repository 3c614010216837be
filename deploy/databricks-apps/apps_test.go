package databricksapps

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"testing"

	_ "github.com/agentrt/agentrt/examples/assistant" // the agent these files deploy
	"github.com/agentrt/agentrt/internal/apps"
	"github.com/agentrt/agentrt/runtime/cli"
)

// TestFilesAreGenerated regenerates the assistant's files with
// `serve apps-config` and compares them with the committed ones, so they
// never drift from what the agent declares.
func TestFilesAreGenerated(t *testing.T) {
	out := t.TempDir()
	var log bytes.Buffer
	if err := cli.Run(t.Context(), []string{"apps-config", "--agent", "assistant", "--out", out}, &log); err != nil {
		t.Fatalf("apps-config: %v\n%s", err, log.String())
	}
	for _, name := range []string{apps.AppYAMLFile, apps.BundleFile} {
		want, err := os.ReadFile(filepath.Join(out, name))
		if err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s is not what `serve apps-config --agent assistant` writes; regenerate it:\n"+
				"  go run ./cmd/serve apps-config --agent assistant --out deploy/databricks-apps\n--- committed\n%s\n--- generated\n%s", name, got, want)
		}
	}
}

// TestFilesDecodeStrictly reads the committed files the way the platform
// and the Apps API would, strictly.
func TestFilesDecodeStrictly(t *testing.T) {
	raw, err := os.ReadFile(apps.AppYAMLFile)
	if err != nil {
		t.Fatal(err)
	}
	ay, err := apps.ParseAppYAML(raw)
	if err != nil {
		t.Fatal(err)
	}
	if ay.Command[0] != "./serve" || !slices.Contains(ay.Command, "assistant") {
		t.Errorf("app.yaml command %q does not start ./serve with the assistant", ay.Command)
	}
	raw, err = os.ReadFile(apps.BundleFile)
	if err != nil {
		t.Fatal(err)
	}
	all, err := apps.ParseBundle(raw)
	if err != nil {
		t.Fatal(err)
	}
	app := all["assistant"]
	if app == nil || app.SourceCodePath != "." || len(app.UserApiScopes) == 0 {
		t.Fatalf("bundle apps = %+v, want the assistant with its source and user_api_scopes", all)
	}
	for _, r := range app.Resources {
		if !slices.ContainsFunc(ay.Env, func(e apps.EnvVar) bool { return e.ValueFrom == r.Name }) {
			t.Errorf("app.yaml binds no env var to resource %q", r.Name)
		}
	}
}
