package devmode_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/agentrt/agentrt/internal/credentials"
	"github.com/agentrt/agentrt/internal/devmode"
	"github.com/agentrt/agentrt/internal/devworkspace"
	"github.com/databricks/databricks-sdk-go/service/iam"
)

func TestCheckAddr(t *testing.T) {
	for addr, ok := range map[string]bool{
		"127.0.0.1:8000": true, "[::1]:8000": true, "localhost:0": true, "127.5.0.1:1": true,
		":8000": false, "0.0.0.0:8000": false, "[::]:8000": false, "10.0.0.5:80": false, "example.com:80": false,
	} {
		err := devmode.CheckAddr("--addr", addr)
		var ae *devmode.AddrError
		if ok != (err == nil) || (!ok && !errors.As(err, &ae)) {
			t.Errorf("CheckAddr(%q) = %v", addr, err)
		}
	}
	if err := devmode.CheckAddr("--addr", "no-port"); err == nil {
		t.Error("address without port accepted")
	}
}

func TestStartRefusesRemote(t *testing.T) {
	for _, o := range []devmode.Options{
		{ServeAddr: ":8000"},
		{Addr: "0.0.0.0:0"},
	} {
		if d, err := devmode.Start(context.Background(), o); err == nil {
			d.Close()
			t.Errorf("Start(%+v) succeeded", o)
		}
	}
	// Naming the hosts remote clients use allows a remote listen address,
	// and the dev workspace answers those names (and still loopback).
	d, err := devmode.Start(context.Background(), devmode.Options{ServeAddr: "0.0.0.0:8000", AllowedHosts: []string{"devbox.test"}})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	for host, want := range map[string]int{"devbox.test:8000": 200, "127.0.0.1": 200, "evil.example.com": 403} {
		req, _ := http.NewRequest(http.MethodGet, d.URL()+"/.well-known/databricks-config", nil)
		req.Host = host
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("Host %q: %d, want %d", host, resp.StatusCode, want)
		}
	}
}

// The old boolean form of --dev-allow-remote is refused with the reason, not
// taken for a host named "true".
func TestStartRefusesBadAllowedHosts(t *testing.T) {
	for _, hosts := range [][]string{{"true"}, {"devbox.test:8000"}} {
		d, err := devmode.Start(context.Background(), devmode.Options{ServeAddr: "0.0.0.0:8000", AllowedHosts: hosts})
		if err == nil {
			d.Close()
			t.Fatalf("Start(AllowedHosts %q) succeeded", hosts)
		}
		if !strings.Contains(err.Error(), "--dev-allow-remote") {
			t.Errorf("error does not name the flag: %v", err)
		}
	}
}

// The system client reaches the dev workspace as agent-sp through the real
// M2M flow, and the mock identities are the dev users' tokens.
func TestStart(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	d, err := devmode.Start(ctx, devmode.Options{ServeAddr: "127.0.0.1:8000"})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if users := d.Users(); users["alice"] != devworkspace.AliceToken || users["bob"] != devworkspace.BobToken || users["carol"] != devworkspace.CarolToken {
		t.Fatalf("Users = %v", users)
	}
	sys, err := credentials.NewSystem(ctx, d.System())
	if err != nil {
		t.Fatal(err)
	}
	defer sys.Close()
	me, err := sys.Client().CurrentUser.Me(ctx, iam.MeRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if me.UserName != devworkspace.SPClientID || sys.Source() != credentials.SourceM2M {
		t.Fatalf("system client is %q via %s", me.UserName, sys.Source())
	}
	var me1 int
	for _, e := range d.Workspace().Audit() {
		if e.Path == "/api/2.0/preview/scim/v2/Me" {
			me1++
			if e.Principal != devworkspace.SPClientID || e.AuthMethod != devworkspace.MethodOAuthM2M {
				t.Fatalf("audit: %+v", e)
			}
		}
	}
	if me1 != 1 {
		t.Fatalf("%d audited Me calls, want 1", me1)
	}
}
