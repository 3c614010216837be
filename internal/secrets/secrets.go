// Package secrets resolves {{secrets/scope/key}} references in configuration
// values at start-up, through the workspace Secrets API with the service
// principal's client. A reference that cannot be resolved stops start-up with
// an error naming the reference; secret values never appear in errors or logs.
package secrets

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strings"

	"github.com/databricks/databricks-sdk-go"
	"github.com/databricks/databricks-sdk-go/service/workspace"
)

// refPattern matches {{secrets/scope/key}}, the syntax of Databricks Model
// Serving and Apps environment variables. Scope and key names are
// alphanumerics, dashes, underscores and periods.
var refPattern = regexp.MustCompile(`\{\{\s*secrets/([A-Za-z0-9_.\-]+)/([A-Za-z0-9_.\-]+)\s*\}\}`)

// Ref is one secret reference.
type Ref struct{ Scope, Key string }

func (r Ref) String() string { return "{{secrets/" + r.Scope + "/" + r.Key + "}}" }

// Refs returns the references in s, in order of appearance.
func Refs(s string) []Ref {
	var out []Ref
	for _, m := range refPattern.FindAllStringSubmatch(s, -1) {
		out = append(out, Ref{m[1], m[2]})
	}
	return out
}

// Contains reports whether s holds a secret reference.
func Contains(s string) bool { return refPattern.MatchString(s) }

// Error is an unresolvable reference. Name is the configuration key the
// value came from, when known.
type Error struct {
	Name string
	Ref  Ref
	Err  error
}

func (e *Error) Error() string {
	where := ""
	if e.Name != "" {
		where = " in " + e.Name
	}
	return fmt.Sprintf("secret reference %s%s cannot be resolved: %v", e.Ref, where, e.Err)
}

func (e *Error) Unwrap() error { return e.Err }

// Resolver resolves references with one workspace client, fetching each
// secret once. It is meant for start-up and is not safe for concurrent use.
type Resolver struct {
	w     *databricks.WorkspaceClient
	cache map[Ref]string
}

// NewResolver returns a Resolver using w (normally the system client).
func NewResolver(w *databricks.WorkspaceClient) *Resolver {
	return &Resolver{w: w, cache: map[Ref]string{}}
}

// String replaces every reference in s with the secret's value.
func (r *Resolver) String(ctx context.Context, s string) (string, error) {
	var firstErr error
	out := refPattern.ReplaceAllStringFunc(s, func(m string) string {
		if firstErr != nil {
			return m
		}
		sub := refPattern.FindStringSubmatch(m)
		v, err := r.get(ctx, Ref{sub[1], sub[2]})
		if err != nil {
			firstErr = err
			return m
		}
		return v
	})
	if firstErr != nil {
		return "", firstErr
	}
	return out, nil
}

// Map resolves every value of m in place. All unresolvable references are
// reported together (errors.Join of *Error), in key order.
func (r *Resolver) Map(ctx context.Context, m map[string]string) error {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var errs []error
	for _, k := range keys {
		if !Contains(m[k]) {
			continue
		}
		v, err := r.String(ctx, m[k])
		if err != nil {
			var se *Error
			if errors.As(err, &se) {
				se.Name = k
			}
			errs = append(errs, err)
			continue
		}
		m[k] = v
	}
	return errors.Join(errs...)
}

func (r *Resolver) get(ctx context.Context, ref Ref) (string, error) {
	if v, ok := r.cache[ref]; ok {
		return v, nil
	}
	resp, err := r.w.Secrets.GetSecret(ctx, workspace.GetSecretRequest{Scope: ref.Scope, Key: ref.Key})
	if err != nil {
		return "", &Error{Ref: ref, Err: err}
	}
	b, err := base64.StdEncoding.DecodeString(resp.Value)
	if err != nil {
		return "", &Error{Ref: ref, Err: errors.New("the Secrets API returned a value that is not base64")}
	}
	r.cache[ref] = string(b)
	return string(b), nil
}

// ResolveMap is NewResolver(w).Map(ctx, m).
func ResolveMap(ctx context.Context, w *databricks.WorkspaceClient, m map[string]string) error {
	return NewResolver(w).Map(ctx, m)
}

// Environ resolves the entries of environ ("KEY=value", as os.Environ
// returns them) whose values hold references, and returns the resolved
// values by key. Entries without references are left out.
func (r *Resolver) Environ(ctx context.Context, environ []string) (map[string]string, error) {
	m := map[string]string{}
	for _, kv := range environ {
		k, v, ok := strings.Cut(kv, "=")
		if ok && Contains(v) {
			m[k] = v
		}
	}
	if err := r.Map(ctx, m); err != nil {
		return nil, err
	}
	return m, nil
}
