package apps

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/databricks/databricks-sdk-go"
	"github.com/databricks/databricks-sdk-go/apierr"
	"github.com/databricks/databricks-sdk-go/service/apps"
)

// Deploy creates the app, or updates its definition (description,
// resources, user_api_scopes) when it exists, then deploys the files
// already uploaded to sourceCodePath (a workspace folder) and waits, up to
// timeout, for the deployment to succeed. It is what `databricks bundle
// deploy` + `bundle run` do, with the SDK's Apps.Create / Apps.Update /
// Apps.Deploy.
func Deploy(ctx context.Context, w *databricks.WorkspaceClient, app apps.App, sourceCodePath string, timeout time.Duration) (*apps.AppDeployment, error) {
	if sourceCodePath == "" {
		return nil, errors.New("apps: deploy needs the workspace folder the app's files were uploaded to")
	}
	def := apps.App{Name: app.Name, Description: app.Description, Resources: app.Resources, UserApiScopes: app.UserApiScopes}
	_, err := w.Apps.Get(ctx, apps.GetAppRequest{Name: app.Name})
	switch {
	case errors.Is(err, apierr.ErrResourceDoesNotExist) || errors.Is(err, apierr.ErrNotFound):
		wait, err := w.Apps.Create(ctx, apps.CreateAppRequest{App: def})
		if err != nil {
			return nil, fmt.Errorf("apps: create %s: %w", app.Name, err)
		}
		if _, err := wait.GetWithTimeout(timeout); err != nil {
			return nil, fmt.Errorf("apps: %s did not become active: %w", app.Name, err)
		}
	case err != nil:
		return nil, fmt.Errorf("apps: get %s: %w", app.Name, err)
	default:
		if _, err := w.Apps.Update(ctx, apps.UpdateAppRequest{Name: app.Name, App: def}); err != nil {
			return nil, fmt.Errorf("apps: update %s: %w", app.Name, err)
		}
	}
	wait, err := w.Apps.Deploy(ctx, apps.CreateAppDeploymentRequest{AppName: app.Name,
		AppDeployment: apps.AppDeployment{SourceCodePath: sourceCodePath, Mode: apps.AppDeploymentModeSnapshot}})
	if err != nil {
		return nil, fmt.Errorf("apps: deploy %s: %w", app.Name, err)
	}
	d, err := wait.GetWithTimeout(timeout)
	if err != nil {
		return nil, fmt.Errorf("apps: deployment of %s did not succeed: %w", app.Name, err)
	}
	return d, nil
}
