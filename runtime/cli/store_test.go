package cli

import (
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/agentrt/agentrt/internal/store"
)

// TestMain points the default SQLite store (XDG_STATE_HOME) at a temporary
// directory, so that no test writes to the user's ~/.local/state.
func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "agentrt-cli-state-")
	if err != nil {
		panic(err)
	}
	os.Setenv("XDG_STATE_HOME", dir)
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

func TestStoreFlags(t *testing.T) {
	c, err := parseFlags([]string{"--agent", "echo"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	want := "sqlite:" + filepath.Join(os.Getenv("XDG_STATE_HOME"), "agentrt", "state.db")
	if c.storeSpec != want || c.storeTTL != 30*24*time.Hour || !c.storeMigrate {
		t.Errorf("defaults: %q %s %v, want %q 720h true", c.storeSpec, c.storeTTL, c.storeMigrate, want)
	}
	t.Setenv("AGENTRT_STORE", "memory")
	t.Setenv("AGENTRT_STORE_TTL", "1h")
	t.Setenv("AGENTRT_STORE_MIGRATE", "false")
	if c, err = parseFlags(nil, io.Discard); err != nil || c.storeSpec != "memory" || c.storeTTL != time.Hour || c.storeMigrate {
		t.Errorf("from the environment: %q %s %v %v", c.storeSpec, c.storeTTL, c.storeMigrate, err)
	}
	for _, args := range [][]string{
		{"--store", "mysql://x"},
		{"--store", "sqlite:"},
		{"--store-ttl", "0s"},
	} {
		if _, err := parseFlags(args, io.Discard); err == nil {
			t.Errorf("parseFlags(%q) succeeded", args)
		}
	}
	// A password in a bad spec is not repeated in the error.
	if _, err := parseFlags([]string{"--store", "mysql://u:hunter2@db/x"}, io.Discard); err == nil || strings.Contains(err.Error(), "hunter2") {
		t.Errorf("error %v", err)
	}
}

// TestServeMigrate: `serve migrate` creates the schema that a serve with
// --store-migrate=false then requires.
func TestServeMigrate(t *testing.T) {
	spec := "sqlite:" + filepath.Join(t.TempDir(), "sub", "state.db")
	ctx := context.Background()
	if _, err := store.Open(ctx, spec, store.Options{NoMigrate: true}); err == nil {
		t.Fatal("an unmigrated store opened with NoMigrate")
	}
	if err := Run(ctx, []string{"migrate", "--store", spec, "--log-format", "json"}, io.Discard); err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(ctx, spec, store.Options{NoMigrate: true})
	if err != nil {
		t.Fatalf("after serve migrate: %v", err)
	}
	st.Close()
}

// TestServeDevStoresPerCaller: serve --dev keeps alice's response in the
// SQLite store --store names; bob cannot read it.
func TestServeDevStoresPerCaller(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	addr, _ := serveDev(t, "--store", "sqlite:"+path)
	req := func(method, url, user, body string) (int, string) {
		t.Helper()
		r, err := http.NewRequest(method, url, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		r.Header.Set("Content-Type", "application/json")
		r.Header.Set("X-Dev-User", user)
		resp, err := http.DefaultClient.Do(r)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	code, body := req("POST", "http://"+addr+"/v1/responses", "alice", `{"input":"remember me"}`)
	if code != 200 || !strings.Contains(body, `"store":true`) {
		t.Fatalf("POST: %d %s", code, body)
	}
	id := body[strings.Index(body, `"id":"`)+6:]
	id = id[:strings.IndexByte(id, '"')]
	if code, body := req("GET", "http://"+addr+"/v1/responses/"+id, "alice", ""); code != 200 || !strings.Contains(body, "echo: remember me") {
		t.Errorf("alice's GET: %d %s", code, body)
	}
	if code, _ := req("GET", "http://"+addr+"/v1/responses/"+id, "bob", ""); code != 404 {
		t.Errorf("bob's GET: %d", code)
	}
	if _, err := os.Stat(path); err != nil {
		t.Errorf("the store file: %v", err)
	}
}
