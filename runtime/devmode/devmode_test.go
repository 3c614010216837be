package devmode_test

import (
	"context"
	"errors"
	"net/http"
	"testing"

	"github.com/agentrt/agentrt/devworkspace"
	"github.com/agentrt/agentrt/runtime/credentials"
	"github.com/agentrt/agentrt/runtime/devmode"
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
	d, err := devmode.Start(context.Background(), devmode.Options{ServeAddr: "0.0.0.0:8000", AllowRemote: true})
	if err != nil {
		t.Fatal(err)
	}
	// Close only once the workspace is serving.
	resp, err := http.Get(d.URL() + "/.well-known/databricks-config")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	d.Close()
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
	sys, err := credentials.NewSystem(ctx, credentials.SystemOptions{Lookup: d.Lookup})
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
