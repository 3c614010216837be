package credentials_test

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/databricks/databricks-sdk-go"

	"github.com/agentrt/agentrt/agent"
	"github.com/agentrt/agentrt/internal/credentials"
	"github.com/agentrt/agentrt/internal/syncbuf"
)

func TestSystemSourcePrecedence(t *testing.T) {
	f := newFakeWorkspace(t)
	dir := t.TempDir()
	tokenFile := filepath.Join(dir, "token")
	os.WriteFile(tokenFile, []byte(`{"OAUTH_TOKEN":[{"oauthTokenValue":"pat-sp"}]}`), 0o600)
	oidcFile := filepath.Join(dir, "oidc")
	os.WriteFile(oidcFile, []byte("k8s-projected-jwt"), 0o600)

	tests := []struct {
		opts credentials.SystemOptions
		want string
	}{
		{credentials.SystemOptions{ClientID: "agent-sp", ClientSecret: "agent-sp-secret", Token: "pat-sp", TokenFile: tokenFile}, credentials.SourceM2M},
		{credentials.SystemOptions{Token: "pat-sp", OIDCTokenFile: oidcFile, TokenFile: tokenFile}, credentials.SourceTokenFile},
		{credentials.SystemOptions{Token: "pat-sp", OIDCTokenFile: oidcFile, ClientID: "agent-sp"}, credentials.SourceOIDCFile},
		{credentials.SystemOptions{Token: "pat-sp"}, credentials.SourcePAT},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			tt.opts.Host = f.URL
			s, err := credentials.NewSystem(context.Background(), tt.opts)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			if s.Source() != tt.want {
				t.Fatalf("source = %s, want %s", s.Source(), tt.want)
			}
			if err := getSpace(context.Background(), s.Client()); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// NewSystem reads no environment: with the variables set but no options,
// it has nothing to use.
func TestSystemNeedsConfiguration(t *testing.T) {
	t.Setenv("DATABRICKS_HOST", "http://127.0.0.1:1")
	t.Setenv("DATABRICKS_TOKEN", "pat-sp")
	for _, o := range []credentials.SystemOptions{
		{},
		{Host: "http://127.0.0.1:1"},
	} {
		if _, err := credentials.NewSystem(context.Background(), o); err == nil {
			t.Errorf("NewSystem(%+v) succeeded", o)
		}
	}
}

// The token endpoint goes down before the first background refresh and
// stays down for several attempts: every request still succeeds with the
// cached token, and the refresh lands before that token expires.
func TestSystemM2MRefreshSurvivesTokenOutage(t *testing.T) {
	f := newFakeWorkspace(t)
	f.tokenTTL = 6 * time.Second // background refresh starts at 3s
	events := make(chan credentials.RefreshEvent, 100)
	s, err := credentials.NewSystem(context.Background(), credentials.SystemOptions{
		Host:     f.URL,
		ClientID: "agent-sp", ClientSecret: "agent-sp-secret",
		RetryMin: 100 * time.Millisecond, RetryMax: 200 * time.Millisecond,
		OnRefresh: func(ev credentials.RefreshEvent) { events <- ev },
	})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	first := <-events
	if first.Err != nil || first.Background {
		t.Fatalf("first event = %+v", first)
	}
	f.tokenDown.Store(true)

	stop := make(chan struct{})
	var failed, ok atomic.Int64
	var wg sync.WaitGroup
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			pace := time.NewTicker(2 * time.Millisecond) // steady load, not a busy loop
			defer pace.Stop()
			for {
				select {
				case <-stop:
					return
				case <-pace.C:
				}
				if err := getSpace(context.Background(), s.Client()); err != nil {
					failed.Add(1)
					t.Error(err)
				} else {
					ok.Add(1)
				}
			}
		}()
	}
	for fails := 0; fails < 3; {
		ev := <-events
		if ev.Err == nil {
			t.Fatalf("refresh succeeded while the token endpoint was down: %+v", ev)
		}
		fails++
	}
	f.tokenDown.Store(false)
	var ev credentials.RefreshEvent
	for ev = <-events; ev.Err != nil; ev = <-events {
	}
	refreshedAt := time.Now()
	close(stop)
	wg.Wait()
	if !ev.Background || !refreshedAt.Before(first.Expiry) {
		t.Fatalf("refresh %+v at %v, want a background refresh before %v", ev, refreshedAt, first.Expiry)
	}
	if failed.Load() != 0 || ok.Load() == 0 {
		t.Fatalf("%d failed, %d ok requests", failed.Load(), ok.Load())
	}
	// The new token is in use.
	before := len(f.snapshot())
	if err := getSpace(context.Background(), s.Client()); err != nil {
		t.Fatal(err)
	}
	if c := f.snapshot()[before]; c.Principal != "agent-sp" {
		t.Fatalf("call ran as %q", c.Principal)
	}
}

func TestSystemTokenFileRotation(t *testing.T) {
	f := newFakeWorkspace(t)
	f.tokens["rotated-token-b"] = fakeToken{principal: "sp-rotated"}
	path := filepath.Join(t.TempDir(), "model-dependencies-oauth-token")
	if err := os.WriteFile(path, []byte(`{"OAUTH_TOKEN":[{"oauthTokenValue":"pat-sp"}]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	events := make(chan credentials.RefreshEvent, 100)
	s, err := credentials.NewSystem(context.Background(), credentials.SystemOptions{
		Host: f.URL, TokenFile: path, PollInterval: 10 * time.Millisecond,
		OnRefresh: func(ev credentials.RefreshEvent) { events <- ev },
	})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	<-events // start-up read

	stop := make(chan struct{})
	var wg sync.WaitGroup
	var failed atomic.Int64
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			if err := getSpace(context.Background(), s.Client()); err != nil {
				failed.Add(1)
			}
		}
	}()
	// Rotate: write elsewhere and rename, as a platform would.
	tmp := path + ".tmp"
	os.WriteFile(tmp, []byte("rotated-token-b\n"), 0o600)
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
	if ev := <-events; ev.Err != nil || !ev.Background {
		t.Fatalf("rotation event = %+v", ev)
	}
	close(stop)
	wg.Wait()
	before := len(f.snapshot())
	if err := getSpace(context.Background(), s.Client()); err != nil {
		t.Fatal(err)
	}
	if c := f.snapshot()[before]; c.Principal != "sp-rotated" {
		t.Fatalf("after rotation the call ran as %q", c.Principal)
	}
	if failed.Load() != 0 {
		t.Fatalf("%d requests failed during rotation", failed.Load())
	}

	// A broken rewrite keeps the current token.
	os.WriteFile(path, []byte(`{"OAUTH_TOKEN":[]}`), 0o600)
	if ev := <-events; ev.Err == nil {
		t.Fatal("broken token file accepted")
	}
	if err := getSpace(context.Background(), s.Client()); err != nil {
		t.Fatal(err)
	}
}

func TestSystemBadTokenFile(t *testing.T) {
	dir := t.TempDir()
	for name, content := range map[string]string{
		"empty":    "",
		"json":     `{"OAUTH_TOKEN":"secret-value-xyz"`,
		"no-token": `{"OAUTH_TOKEN":[{"other":"secret-value-xyz"}]}`,
		"spaces":   "secret-value-xyz and more",
	} {
		path := filepath.Join(dir, name)
		os.WriteFile(path, []byte(content), 0o600)
		_, err := credentials.NewSystem(context.Background(), credentials.SystemOptions{Host: "http://127.0.0.1:1", TokenFile: path})
		if err == nil || strings.Contains(err.Error(), "secret-value-xyz") || !strings.Contains(err.Error(), path) {
			t.Errorf("%s: err = %v, want an error naming the file and not its content", name, err)
		}
	}
}

func TestSystemPassthroughOverrideWarning(t *testing.T) {
	f := newFakeWorkspace(t)
	var logs syncbuf.Buffer
	s, err := credentials.NewSystem(context.Background(), credentials.SystemOptions{
		Host: f.URL, Token: "pat-sp",
		Passthrough: []agent.Resource{{Type: agent.GenieSpace, Name: "s1"}},
		Logger:      slog.New(slog.NewTextHandler(&logs, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	out := logs.String()
	if !strings.Contains(out, "override automatic authentication passthrough") || !strings.Contains(out, "genie_space:s1") {
		t.Fatalf("no override warning in logs:\n%s", out)
	}
	if strings.Contains(out, "pat-sp") {
		t.Fatalf("logs leak the token:\n%s", out)
	}
}

func TestSystemM2MBadSecret(t *testing.T) {
	f := newFakeWorkspace(t)
	_, err := credentials.NewSystem(context.Background(), credentials.SystemOptions{
		Host:     f.URL,
		ClientID: "agent-sp", ClientSecret: "wrong-secret-value",
	})
	if err == nil || !strings.Contains(err.Error(), "oauth-m2m") || strings.Contains(err.Error(), "wrong-secret-value") {
		t.Fatalf("err = %v", err)
	}
	if !errors.Is(err, databricks.ErrUnauthenticated) {
		t.Fatalf("err = %v, want ErrUnauthenticated", err)
	}
}
