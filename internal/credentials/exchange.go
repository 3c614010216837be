package credentials

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/databricks/databricks-sdk-go/apierr"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/agentrt/agentrt/internal/ttlcache"
)

// RFC 8693 names.
const (
	GrantTypeTokenExchange = "urn:ietf:params:oauth:grant-type:token-exchange"
	TokenTypeAccessToken   = "urn:ietf:params:oauth:token-type:access_token"
	TokenTypeJWT           = "urn:ietf:params:oauth:token-type:jwt"
)

// SourceTokenExchange labels token exchanges in agentrt.token.refreshes.
const SourceTokenExchange = "token-exchange"

// ExchangeOptions configure the RFC 8693 token exchange of the user client.
type ExchangeOptions struct {
	// TokenURL defaults to {host}/oidc/v1/token.
	TokenURL string
	// ClientID is sent as client_id when set.
	ClientID string
	// SubjectTokenType defaults to TokenTypeAccessToken.
	SubjectTokenType string
	// Timeout bounds one exchange (default 30s).
	Timeout time.Duration
	// DefaultTTL is how long to cache an exchanged token that comes without
	// expires_in (default 5m).
	DefaultTTL time.Duration
	// MaxEntries bounds the cache (default 10000); expired entries go first.
	MaxEntries int
}

// ExchangeError is a failed token exchange. It matches
// databricks.ErrUnauthenticated when the token endpoint rejected the subject
// token.
type ExchangeError struct {
	Status int    // HTTP status of the token endpoint, 0 if none
	Code   string // OAuth error code, e.g. invalid_grant
	Err    error  // transport error, when Status is 0
}

func (e *ExchangeError) Error() string {
	if e.Status == 0 {
		return fmt.Sprintf("token exchange failed: %v", e.Err)
	}
	return fmt.Sprintf("token exchange rejected: HTTP %d %s", e.Status, e.Code)
}

func (e *ExchangeError) Unwrap() error {
	if e.Status == http.StatusBadRequest || e.Status == http.StatusUnauthorized || e.Status == http.StatusForbidden {
		return &apierr.APIError{ErrorCode: "UNAUTHENTICATED", StatusCode: http.StatusUnauthorized, Message: e.Error()}
	}
	return e.Err
}

type exchangeEntry struct {
	token  string
	expiry time.Time
}

// exchanger exchanges inbound tokens for down-scoped ones, caching results by
// the full key of the inbound token until shortly before expiry, with one
// exchange in flight per token.
type exchanger struct {
	cfg        clientcredentials.Config
	httpClient *http.Client
	scopeKey   string
	opts       ExchangeOptions
	now        func() time.Time
	cache      *ttlcache.Cache[Key, string]
}

func newExchanger(host string, scopes []string, o ExchangeOptions, transport http.RoundTripper) (*exchanger, error) {
	if o.TokenURL == "" {
		o.TokenURL = host + "/oidc/v1/token"
	}
	if o.SubjectTokenType == "" {
		o.SubjectTokenType = TokenTypeAccessToken
	}
	if o.Timeout <= 0 {
		o.Timeout = 30 * time.Second
	}
	if o.DefaultTTL <= 0 {
		o.DefaultTTL = 5 * time.Minute
	}
	if o.MaxEntries <= 0 {
		o.MaxEntries = 10000
	}
	if len(scopes) == 0 {
		return nil, errors.New("credentials: token exchange needs declared user API scopes")
	}
	if transport == nil {
		transport = http.DefaultTransport
	}
	sorted := slices.Sorted(slices.Values(scopes))
	x := &exchanger{
		cfg: clientcredentials.Config{
			ClientID:  o.ClientID,
			TokenURL:  o.TokenURL,
			Scopes:    sorted,
			AuthStyle: oauth2.AuthStyleInParams,
		},
		httpClient: &http.Client{Transport: transport, Timeout: o.Timeout},
		scopeKey:   strings.Join(sorted, " "),
		opts:       o,
	}
	x.now = time.Now
	x.cache = ttlcache.NewWithClock[Key, string](o.MaxEntries, func() time.Time { return x.now() })
	return x, nil
}

// token returns the exchanged token for c, from the cache when fresh. The
// exchange outlives a cancelled waiter: other requests with the same token
// may be waiting on it.
func (x *exchanger) token(ctx context.Context, c *caller) (string, error) {
	return x.cache.Do(ctx, c.key, func(ctx context.Context) (string, time.Duration, error) {
		ctx, cancel := context.WithTimeout(ctx, x.opts.Timeout)
		defer cancel()
		ctx, span := otel.Tracer(tracerName).Start(ctx, "identity.token_exchange",
			trace.WithAttributes(attribute.String("agentrt.credential", c.fingerprint()), attribute.String("agentrt.scopes", x.scopeKey)))
		defer span.End()
		e, err := x.exchange(ctx, c.token)
		recordRefresh(ctx, SourceTokenExchange, err)
		if err != nil {
			span.SetStatus(codes.Error, err.Error())
			return "", 0, err
		}
		return e.token, e.expiry.Sub(x.now()), nil
	})
}

func (x *exchanger) exchange(ctx context.Context, subject string) (exchangeEntry, error) {
	cfg := x.cfg
	cfg.EndpointParams = map[string][]string{
		"grant_type":         {GrantTypeTokenExchange},
		"subject_token":      {subject},
		"subject_token_type": {x.opts.SubjectTokenType},
	}
	tok, err := cfg.Token(context.WithValue(ctx, oauth2.HTTPClient, x.httpClient))
	if err != nil {
		return exchangeEntry{}, sanitizeTokenError(err)
	}
	expiry := tok.Expiry
	if expiry.IsZero() {
		expiry = x.now().Add(x.opts.DefaultTTL)
	}
	// Stop using the exchanged token a little before it expires, so a call
	// does not start with a token that dies in flight.
	expiry = expiry.Add(-min(30*time.Second, time.Until(expiry)/10))
	return exchangeEntry{token: tok.AccessToken, expiry: expiry}, nil
}

// sanitizeTokenError drops the response body of an OAuth error (which a
// misbehaving server could fill with anything) and keeps status and code.
func sanitizeTokenError(err error) error {
	var re *oauth2.RetrieveError
	if errors.As(err, &re) {
		status := 0
		if re.Response != nil {
			status = re.Response.StatusCode
		}
		return &ExchangeError{Status: status, Code: re.ErrorCode}
	}
	return &ExchangeError{Err: err}
}

const tracerName = "github.com/agentrt/agentrt/internal/credentials"
