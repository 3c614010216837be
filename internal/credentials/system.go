package credentials

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/agentrt/agentrt/agent"
	"github.com/agentrt/agentrt/internal/httpretry"
	"github.com/databricks/databricks-sdk-go"
	"github.com/databricks/databricks-sdk-go/config"
	sdkcred "github.com/databricks/databricks-sdk-go/config/credentials"
	"github.com/databricks/databricks-sdk-go/httpclient"
	"golang.org/x/oauth2"
)

// SystemOptions configure the system client. The credential fields are
// what the deployment configured (runtime/cli reads them from the
// DATABRICKS_* and AGENTRT_TOKEN_FILE variables); the first source they make
// usable wins, in the order of the package doc.
type SystemOptions struct {
	// Host is the workspace URL (required). The workspace id, when needed,
	// is ClientOptions.WorkspaceID.
	Host string
	// ClientID and ClientSecret select OAuth M2M. ClientID alone is the
	// client id of workload-identity federation.
	ClientID, ClientSecret string
	// TokenFile is a platform-injected token file; when empty,
	// DefaultTokenFile is used if it exists.
	TokenFile string
	// OIDCTokenFile is an ID token file for workload-identity federation,
	// exchanged for a workspace token for TokenAudience (default: the
	// SDK's).
	OIDCTokenFile, TokenAudience string
	// Token is a personal access token.
	Token string

	// Passthrough are the agent's declared system resources. When a manual
	// source (M2M, OIDC, PAT) is used while they are declared, a warning
	// says the manual credentials override passthrough for all of them.
	Passthrough []agent.Resource
	Logger      *slog.Logger

	// RetryMin and RetryMax bound the backoff of background refreshes while
	// the token endpoint fails (defaults 1s and 30s).
	RetryMin, RetryMax time.Duration
	// FetchTimeout bounds one token acquisition (default 1m).
	FetchTimeout time.Duration
	// PollInterval is how often a token file's mtime is checked (default 5s).
	PollInterval time.Duration
	// FailureTTL is how long a failed token fetch is remembered when there
	// is no valid token: requests in that window fail at once with an
	// *UnavailableError instead of each calling the endpoint (default 2s).
	FailureTTL time.Duration
	// TokenWait is the longest a request waits for a token fetch in flight
	// when there is no valid token; its ctx may end the wait sooner
	// (default 5s). The fetch itself goes on, bounded by FetchTimeout.
	TokenWait time.Duration
	// OnRefresh, when set, is told about every token acquisition, after it
	// ends. It runs on the goroutine that fetched (the background refresh
	// or a request waiting for a token), so calls may be concurrent, and it
	// must return promptly: a request may be waiting on it.
	OnRefresh func(RefreshEvent)

	ClientOptions
}

// System is the service-principal client with its background refresh. Its
// methods are safe for concurrent use; Client may be shared by every request.
type System struct {
	w         *databricks.WorkspaceClient
	source    string
	principal string
	r         *refresher
	hostport  string
	cancel    context.CancelFunc
	done      chan struct{}
	closeOnce sync.Once
}

// NewSystem picks the credential source (see the package doc for the
// precedence), acquires the first token and starts the background refresh.
// ctx bounds only the first acquisition; Close stops the refresh.
func NewSystem(ctx context.Context, opts SystemOptions) (*System, error) {
	host, hostport, err := parseHost(strings.TrimSpace(opts.Host))
	if err != nil {
		return nil, err
	}
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	if opts.RetryMin <= 0 {
		opts.RetryMin = time.Second
	}
	if opts.RetryMax < opts.RetryMin {
		opts.RetryMax = max(30*time.Second, opts.RetryMin)
	}
	if opts.FetchTimeout <= 0 {
		opts.FetchTimeout = time.Minute
	}
	if opts.PollInterval <= 0 {
		opts.PollInterval = 5 * time.Second
	}
	if opts.FailureTTL <= 0 {
		opts.FailureTTL = 2 * time.Second
	}
	if opts.TokenWait <= 0 {
		opts.TokenWait = 5 * time.Second
	}

	clientID, clientSecret, pat := opts.ClientID, opts.ClientSecret, opts.Token
	tokenFile, oidcPath := opts.TokenFile, opts.OIDCTokenFile
	if tokenFile == "" {
		if _, err := os.Stat(DefaultTokenFile); err == nil {
			tokenFile = DefaultTokenFile
		}
	}

	transport := opts.Transport
	if transport == nil {
		transport = http.DefaultTransport
	}
	hc := &http.Client{Transport: transport, Timeout: opts.FetchTimeout}
	ep := &endpoints{host: host, client: httpclient.NewApiClient(httpclient.ClientConfig{
		Transport:    opts.Transport,
		HTTPTimeout:  opts.FetchTimeout,
		RetryTimeout: opts.FetchTimeout,
	})}

	s := &System{hostport: hostport, done: make(chan struct{})}
	var fetch fetchFunc
	var fileStampAtStart fileStamp
	switch {
	case clientID != "" && clientSecret != "":
		s.source, s.principal = SourceM2M, clientID
		fetch = m2mFetch(ep, clientID, clientSecret, hc)
	case tokenFile != "":
		s.source, s.principal = SourceTokenFile, "passthrough"
		tok, st, err := readTokenFile(tokenFile)
		if err != nil {
			recordRefresh(ctx, SourceTokenFile, err)
			return nil, fmt.Errorf("system credentials (%s): %w", SourceTokenFile, err)
		}
		fileStampAtStart = st
		fetch = func(context.Context) (*oauth2.Token, error) {
			return &oauth2.Token{AccessToken: tok, TokenType: "Bearer"}, nil
		}
	case oidcPath != "":
		s.source, s.principal = SourceOIDCFile, clientID
		if s.principal == "" {
			s.principal = "workload-identity"
		}
		fetch = oidcFileFetch(ep, host, clientID, opts.TokenAudience, oidcPath, hc)
	case pat != "":
		s.source, s.principal = SourcePAT, "pat:"+Fingerprint(pat)
		fetch = func(context.Context) (*oauth2.Token, error) {
			return &oauth2.Token{AccessToken: pat, TokenType: "Bearer"}, nil
		}
	default:
		return nil, errors.New("system credentials: none configured (set DATABRICKS_CLIENT_ID and DATABRICKS_CLIENT_SECRET, a token file, DATABRICKS_OIDC_TOKEN_FILEPATH or DATABRICKS_TOKEN)")
	}
	if clientID != "" && clientSecret == "" && s.source != SourceOIDCFile {
		log.Warn("DATABRICKS_CLIENT_ID is set without DATABRICKS_CLIENT_SECRET; OAuth M2M not used", "source", s.source)
	}
	if s.source != SourceTokenFile && len(opts.Passthrough) > 0 {
		names := make([]string, 0, len(opts.Passthrough))
		for _, r := range opts.Passthrough {
			names = append(names, string(r.Type)+":"+r.Name)
		}
		log.Warn("manual credentials override automatic authentication passthrough for every declared resource: they are all reached as this principal, not with the platform's passthrough token",
			"source", s.source, "principal", s.principal, "resources", names)
	}

	bg, cancel := context.WithCancel(context.WithoutCancel(ctx))
	s.r = &refresher{
		source: s.source, fetch: fetch,
		retryMin: opts.RetryMin, retryMax: opts.RetryMax, timeout: opts.FetchTimeout,
		failTTL: opts.FailureTTL, maxWait: opts.TokenWait,
		log: log, notify: opts.OnRefresh, life: bg,
	}
	if _, err := s.r.refresh(ctx, false); err != nil {
		cancel()
		return nil, fmt.Errorf("system credentials (%s): %w", s.source, err)
	}
	co := opts.ClientOptions
	co.Transport = sdkRetrying{retry: &httpretry.Transport{Base: co.Transport, ErrorOnGiveUp: true}, base: co.Transport}
	s.w, err = newClient(host, systemStrategy{s}, co)
	if err != nil {
		cancel()
		return nil, err
	}
	s.cancel = cancel
	go func() {
		defer close(s.done)
		if s.source == SourceTokenFile {
			s.r.watchTokenFile(bg, tokenFile, fileStampAtStart, opts.PollInterval)
			return
		}
		s.r.run(bg)
	}()
	log.Info("system credentials ready", "source", s.source, "principal", s.principal, "host", host)
	return s, nil
}

// Client returns the system client, shared by all requests.
func (s *System) Client() *databricks.WorkspaceClient { return s.w }

// Source names the credential source (SourceM2M, …).
func (s *System) Source() string { return s.source }

// Principal describes who the system client calls as (the client id for
// M2M), for logs and the start-up check; never a token.
func (s *System) Principal() string { return s.principal }

// Close stops the background refresh.
func (s *System) Close() error {
	s.closeOnce.Do(func() {
		s.cancel()
		<-s.done
	})
	return nil
}

func (s *System) setHeaders(r *http.Request) error {
	if err := checkHost(r, s.hostport); err != nil {
		return err
	}
	t, err := s.r.Token(r.Context())
	if err != nil {
		return err // an *UnavailableError, which names the source
	}
	r.Header.Set("Authorization", "Bearer "+t.AccessToken)
	setRequestID(r)
	return nil
}

type systemStrategy struct{ s *System }

func (st systemStrategy) Name() string { return st.s.source }

func (st systemStrategy) Configure(context.Context, *config.Config) (sdkcred.CredentialsProvider, error) {
	return sdkcred.CredentialsProviderFn(st.s.setHeaders), nil
}

// sdkRetrying sends the SDK's own calls through an httpretry.Transport that
// honours Retry-After within the call's deadline and never repeats a
// non-idempotent call whose outcome is unknown. The SDK retries 429, 503 and
// I/O errors by itself (after 1–10 s plus jitter, ignoring Retry-After, for
// up to RetryTimeout, POSTs included); the retrying transport gives up with
// an error the SDK does not retry, so nothing is retried twice. Requests
// from other libraries on the same transport (the signed *http.Client that
// tools use) pass through: their libraries read statuses themselves.
type sdkRetrying struct {
	retry http.RoundTripper
	base  http.RoundTripper // nil: http.DefaultTransport
}

func (t sdkRetrying) RoundTrip(r *http.Request) (*http.Response, error) {
	if strings.Contains(r.Header.Get("User-Agent"), "databricks-sdk-go/") {
		return t.retry.RoundTrip(r)
	}
	if t.base == nil {
		return http.DefaultTransport.RoundTrip(r)
	}
	return t.base.RoundTrip(r)
}
