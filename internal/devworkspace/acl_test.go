package devworkspace

import (
	"context"
	"errors"
	"testing"

	"github.com/databricks/databricks-sdk-go"
	"github.com/databricks/databricks-sdk-go/service/dashboards"
	"github.com/databricks/databricks-sdk-go/service/iam"
)

func TestObjectPermissionsAPI(t *testing.T) {
	ws := coreShared(t)
	ctx := context.Background()
	got, err := coreM2M(t, ws).Permissions.Get(ctx, iam.GetPermissionRequest{RequestObjectType: "genie", RequestObjectId: coreSpace})
	if err != nil {
		t.Fatal(err)
	}
	levels := map[string]string{}
	for _, a := range got.AccessControlList {
		name := a.UserName + a.ServicePrincipalName
		for _, p := range a.AllPermissions {
			if levels[name] == "" || levelRank(string(p.PermissionLevel)) > levelRank(levels[name]) {
				levels[name] = string(p.PermissionLevel)
			}
		}
	}
	want := map[string]string{"alice@example.com": "CAN_MANAGE", SPClientID: "CAN_RUN"}
	if len(levels) != len(want) || levels["alice@example.com"] != want["alice@example.com"] || levels[SPClientID] != want[SPClientID] {
		t.Fatalf("genie ACL %v, want %v", levels, want)
	}
	_, err = corePAT(t, ws, BobToken).Permissions.Get(ctx, iam.GetPermissionRequest{RequestObjectType: "genie", RequestObjectId: coreSpace})
	if !errors.Is(err, databricks.ErrPermissionDenied) {
		t.Fatalf("bob reads the genie ACL: %v", err)
	}
	_, err = corePAT(t, ws, AliceToken).Permissions.Get(ctx, iam.GetPermissionRequest{RequestObjectType: "warehouses", RequestObjectId: "nope"})
	if !errors.Is(err, databricks.ErrNotFound) {
		t.Fatalf("unknown warehouse: %v", err)
	}
}

func TestPermissionLevels(t *testing.T) {
	ws := coreShared(t)
	tests := []struct {
		principal, typ, id, want string
	}{
		{"alice@example.com", "serving-endpoints", "dev-llm", "CAN_MANAGE"},
		{SPClientID, "serving-endpoints", "dev-llm", "CAN_QUERY"},
		{SPClientID, "serving-endpoints", "dev-embeddings", "CAN_QUERY"},
		{SPClientID, "warehouses", "dev-warehouse", "CAN_USE"},
		{"bob@example.com", "serving-endpoints", "dev-embeddings", "CAN_QUERY"},
		{"bob@example.com", "genie", coreSpace, ""},
		{"carol@example.com", "serving-endpoints", "dev-llm", "CAN_QUERY"},
		{"carol@example.com", "serving-endpoints", "dev-embeddings", ""},
		{"carol@example.com", "warehouses", "dev-warehouse", ""},
	}
	for _, tt := range tests {
		if got := ws.permissionLevel(ws.principal(tt.principal), tt.typ, tt.id); got != tt.want {
			t.Errorf("%s on %s/%s = %q, want %q", tt.principal, tt.typ, tt.id, got, tt.want)
		}
	}
	uc := []struct {
		principal, priv, typ, name string
		ok                         bool
	}{
		{"alice@example.com", PrivSelect, "table", "main.docs.product_docs", true},
		{SPClientID, PrivSelect, "table", "main.docs.product_docs", true},
		{SPClientID, PrivExecute, "function", "main.tools.top_products", true},
		{SPClientID, PrivUseConnection, "connection", "dev-external-mcp", true},
		{"bob@example.com", PrivExecute, "function", "main.tools.lookup_order", true},
		{"bob@example.com", PrivSelect, "table", "main.docs.product_docs", false},
		{"bob@example.com", PrivSelect, "table", "main.sales.orders", false},
		{"carol@example.com", PrivExecute, "function", "main.tools.lookup_order", false},
		{SPClientID, PrivExecute, "table", "main.sales.orders", false},
	}
	for _, tt := range uc {
		err := ws.acl.checkUC(ws.principal(tt.principal), tt.priv, tt.typ, tt.name)
		if (err == nil) != tt.ok {
			t.Errorf("%s %s on %s %s: err = %v, want ok=%v", tt.principal, tt.priv, tt.typ, tt.name, err, tt.ok)
		}
		var pe *PermissionError
		if err != nil && !errors.As(err, &pe) {
			t.Errorf("error %T is not a *PermissionError", err)
		}
	}
}

func TestGenieListSpaces(t *testing.T) {
	ws := coreShared(t)
	ctx := context.Background()
	got, err := coreM2M(t, ws).Genie.ListSpaces(ctx, dashboards.GenieListSpacesRequest{})
	if err != nil || len(got.Spaces) != 1 || got.Spaces[0].SpaceId != coreSpace {
		t.Fatalf("agent-sp spaces: %+v %v", got, err)
	}
	got, err = corePAT(t, ws, CarolToken).Genie.ListSpaces(ctx, dashboards.GenieListSpacesRequest{})
	if err != nil || len(got.Spaces) != 0 {
		t.Fatalf("carol spaces: %+v %v", got, err)
	}
}

func TestTokenEndpointIsAudited(t *testing.T) {
	ws := coreShared(t)
	w := coreM2M(t, ws, "sql")
	if _, err := w.CurrentUser.Me(context.Background(), iam.MeRequest{}); !errors.Is(err, databricks.ErrPermissionDenied) {
		t.Fatalf("Me with scope sql: %v, want PERMISSION_DENIED", err)
	}
	var token, call bool
	for _, e := range ws.Audit() {
		if e.Path == "/oidc/v1/token" && e.Principal == SPClientID && e.AuthMethod == MethodOAuthM2M && len(e.Scopes) == 1 && e.Scopes[0] == "sql" && e.Status == 200 {
			token = true
		}
		if e.Path == "/api/2.0/preview/scim/v2/Me" && e.Principal == SPClientID && e.Status == 403 {
			call = true
		}
	}
	if !token || !call {
		t.Fatalf("audit: token entry %v, refused call %v", token, call)
	}
}
