package devmode

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/agentrt/agentrt/internal/devworkspace"
	"github.com/agentrt/agentrt/internal/hostcheck"
)

// ConnectOptions configure Connect.
type ConnectOptions struct {
	// URL is the base URL of a running dev workspace (cmd/devworkspace, or
	// the one cmd/devwatch keeps across restarts), e.g. http://127.0.0.1:18765.
	URL string
	// Config or ConfigFile is the configuration that dev workspace runs
	// with (default: the embedded default). The mock identities and the
	// agent's service principal are read from it; Connect checks that the
	// dev workspace accepts that service principal.
	Config     *devworkspace.Config
	ConfigFile string
	// ServeAddr and AllowedHosts are as in Options. AllowedHosts must name
	// URL's host (or be "*") for a URL that is not on a loopback host.
	ServeAddr    string
	AllowedHosts []string
	// Timeout bounds the start-up check and each read of the audit log
	// (default 10s): an address that accepts connections but never answers
	// fails Connect instead of hanging it.
	Timeout time.Duration
	Logger  *slog.Logger
}

// URLError is a dev workspace URL refused because its host is not loopback.
type URLError struct {
	Flag, URL string
}

func (e *URLError) Error() string {
	return fmt.Sprintf("%s %q is not on a loopback host: the dev workspace's credentials are public, so one reached over the network can be used, or impersonated, by anyone; use http://127.0.0.1:PORT, or name its host with --dev-allow-remote", e.Flag, e.URL)
}

// CheckURL returns raw as a base URL without a trailing slash, or an error:
// a *URLError when its host is neither loopback nor named in allowed ("*"
// names every host), and a plain error when it is not an http(s) URL of a
// host.
func CheckURL(flag, raw string, allowed []string) (string, error) {
	u, err := url.Parse(strings.TrimSpace(raw))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil ||
		(u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
		return "", fmt.Errorf("%s %q: want the dev workspace's base URL, http://HOST:PORT", flag, raw)
	}
	host := u.Hostname()
	// As in CheckAddr: only localhost itself and literal loopback
	// addresses are sure to stay on this machine.
	if !strings.EqualFold(host, "localhost") && !hostcheck.IsLoopbackIP(host) &&
		!slices.ContainsFunc(allowed, func(h string) bool { return h == "*" || strings.EqualFold(h, host) }) {
		return "", &URLError{Flag: flag, URL: raw}
	}
	return u.Scheme + "://" + u.Host, nil
}

// Connect uses the dev workspace already running at o.URL instead of
// starting one, so that its state (audit log, Genie conversations, apps, …)
// outlives this process. It checks, within o.Timeout, that a dev workspace
// answers there and accepts the agent's service principal. Close leaves the
// dev workspace running.
func Connect(ctx context.Context, o ConnectOptions) (*Dev, error) {
	const flag = "--dev-workspace-url"
	if _, err := hostcheck.New(o.AllowedHosts); err != nil {
		return nil, fmt.Errorf("--dev-allow-remote: %w", err)
	}
	base, err := CheckURL(flag, o.URL, o.AllowedHosts)
	if err != nil {
		return nil, err
	}
	if len(o.AllowedHosts) == 0 && o.ServeAddr != "" {
		if err := CheckAddr("--addr", o.ServeAddr); err != nil {
			return nil, err
		}
	}
	cfg := o.Config
	if cfg == nil {
		if o.ConfigFile != "" {
			cfg, err = devworkspace.LoadConfig(o.ConfigFile)
		} else {
			cfg, err = devworkspace.DefaultConfig()
		}
		if err != nil {
			return nil, err
		}
	}
	timeout := o.Timeout
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	client := &http.Client{Transport: http.DefaultTransport.(*http.Transport).Clone(), Timeout: timeout}
	d := &Dev{url: base, cfg: cfg, remote: &remoteAudit{base: base, client: client, max: 10000, log: log}}
	id, secret, err := d.servicePrincipal()
	if err != nil {
		return nil, err
	}
	pctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	// The audit log first: it is the dev workspace's own route, so an
	// answer tells a dev workspace from any other server.
	d.remote.mu.Lock()
	err = d.remote.refresh(pctx)
	d.remote.mu.Unlock()
	if err != nil {
		client.CloseIdleConnections()
		var nd *notDevError
		if errors.As(err, &nd) {
			return nil, fmt.Errorf("%s %s: not a dev workspace: %w", flag, base, err)
		}
		return nil, fmt.Errorf("%s %s: no dev workspace answers there (%w); start one with `go run ./cmd/devworkspace`, or leave %s unset to embed one", flag, base, err, flag)
	}
	if err := checkServicePrincipal(pctx, client, base, id, secret); err != nil {
		client.CloseIdleConnections()
		return nil, fmt.Errorf("%s %s: %w", flag, base, err)
	}
	return d, nil
}

// checkServicePrincipal signs the agent's service principal in (OAuth
// client credentials), as the system client will.
func checkServicePrincipal(ctx context.Context, client *http.Client, base, id, secret string) error {
	form := url.Values{"grant_type": {"client_credentials"}, "scope": {"all-apis"}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/oidc/v1/token", strings.NewReader(form.Encode()))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(id, secret)
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("sign-in of the service principal %s: %w", id, err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("the dev workspace refuses the service principal %s of the dev configuration (HTTP %d): start serve with the --dev-config that dev workspace runs with", id, resp.StatusCode)
	}
	return nil
}

// notDevError is an answer that no dev workspace gives.
type notDevError struct{ msg string }

func (e *notDevError) Error() string { return e.msg }

// remoteAudit mirrors the audit log of a dev workspace in another process,
// reading only what is new on each call.
type remoteAudit struct {
	base   string
	client *http.Client
	max    int
	log    *slog.Logger

	mu     sync.Mutex
	mirror []devworkspace.AuditEntry // oldest first, at most max
}

// entries brings the mirror up to date and returns it.
func (r *remoteAudit) entries() []devworkspace.AuditEntry {
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.refresh(context.Background()); err != nil {
		r.log.Warn("dev workspace: reading the audit log", "url", r.base, "error", err)
	}
	return slices.Clone(r.mirror)
}

// refresh reads the entries after the last one it has, asking from that
// last one on: if it is not there unchanged, the dev workspace restarted
// (its sequence numbers start again) or dropped it (the log is bounded), and
// refresh reads the whole log again. r.mu is held.
func (r *remoteAudit) refresh(ctx context.Context) error {
	n := len(r.mirror)
	if n == 0 {
		got, err := r.fetch(ctx, 0)
		r.mirror = r.bound(got)
		return err
	}
	last := r.mirror[n-1]
	got, err := r.fetch(ctx, last.Seq-1)
	if err != nil {
		return err
	}
	if len(got) > 0 && got[0].Seq == last.Seq && got[0].Time.Equal(last.Time) {
		r.mirror = r.bound(append(r.mirror, got[1:]...))
		return nil
	}
	got, err = r.fetch(ctx, 0)
	if err != nil {
		return err
	}
	r.mirror = r.bound(got)
	return nil
}

func (r *remoteAudit) bound(e []devworkspace.AuditEntry) []devworkspace.AuditEntry {
	if over := len(e) - r.max; over > 0 {
		e = slices.Delete(e, 0, over)
	}
	return e
}

// fetch is GET /dev/audit?since=seq.
func (r *remoteAudit) fetch(ctx context.Context, since int64) ([]devworkspace.AuditEntry, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, r.base+"/dev/audit?since="+strconv.FormatInt(since, 10), nil)
	if err != nil {
		return nil, err
	}
	resp, err := r.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, &notDevError{fmt.Sprintf("GET /dev/audit answered HTTP %d", resp.StatusCode)}
	}
	// An empty log is "entries": null. 10,000 entries are a few MB; the
	// bound keeps a wrong server from filling memory.
	var body map[string]json.RawMessage
	var entries []devworkspace.AuditEntry
	if err := json.NewDecoder(io.LimitReader(resp.Body, 64<<20)).Decode(&body); err != nil || body["entries"] == nil ||
		json.Unmarshal(body["entries"], &entries) != nil {
		return nil, &notDevError{"GET /dev/audit answered no audit log"}
	}
	return entries, nil
}
