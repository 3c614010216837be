// Package store keeps the Responses API's per-caller state: stored responses
// (their input and output items, for GET, previous_response_id and
// item_reference) and the event logs and run state of background runs, so a
// client can poll, re-attach to or cancel a run on any replica.
//
// One interface, Store, has three backends chosen by a spec (see Open):
// embedded SQLite (the default), PostgreSQL (replicas sharing state) and
// memory (tests). Every operation takes the caller's verified principal id
// as owner; an object owned by someone else is indistinguishable from an
// absent one (ErrNotFound, same query), and the anonymous caller ("") can
// store nothing (ErrAnonymous). Nothing in the interface can hold a token.
package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"path/filepath"
	"strings"
	"time"

	"go.opentelemetry.io/otel/metric"
)

// Errors every backend returns, for errors.Is.
var (
	// ErrNotFound: no such response (or item) for this owner: absent,
	// expired, deleted or owned by another principal — deliberately the same.
	ErrNotFound = errors.New("store: not found")
	// ErrAnonymous: the owner is "" (an anonymous caller), whose state is
	// never stored nor shared.
	ErrAnonymous = errors.New("store: an anonymous caller has no stored state")
	// ErrOff: the store is off (spec "off"); the host answers 400.
	ErrOff = errors.New("store: the response store is off")
	// ErrExists: Create was given an id that is already stored.
	ErrExists = errors.New("store: response id already exists")
	// ErrFinished: the response is in a terminal status; its status, output
	// and event log can no longer change.
	ErrFinished = errors.New("store: response is finished")
	// ErrBadCursor: ListOptions.After names no input item of the response.
	ErrBadCursor = errors.New("store: unknown list cursor")
	// ErrClosed: the store was closed.
	ErrClosed = errors.New("store: closed")
)

// TooLargeError is returned when a write would make a response (its object,
// items and events together) exceed Options.MaxResponseBytes. Hosts map it
// to 413.
type TooLargeError struct {
	Size  int64 // the size the write would have produced
	Limit int64
}

func (e *TooLargeError) Error() string {
	return fmt.Sprintf("store: response would be %d bytes, over the limit of %d", e.Size, e.Limit)
}

// SequenceError is returned by AppendEvent when seq is not the next number
// of the response's event log (a duplicate or a gap).
type SequenceError struct {
	Got, Want int64
}

func (e *SequenceError) Error() string {
	return fmt.Sprintf("store: event sequence number %d, want %d", e.Got, e.Want)
}

// Status is a response's run state, as OpenAI names it.
type Status string

const (
	StatusQueued     Status = "queued"
	StatusInProgress Status = "in_progress"
	StatusCompleted  Status = "completed"
	StatusFailed     Status = "failed"
	StatusCancelled  Status = "cancelled"
	StatusIncomplete Status = "incomplete"
)

// Terminal reports whether s is final: completed, failed, cancelled or
// incomplete.
func (s Status) Terminal() bool {
	switch s {
	case StatusCompleted, StatusFailed, StatusCancelled, StatusIncomplete:
		return true
	}
	return false
}

func (s Status) valid() bool { return s == StatusQueued || s == StatusInProgress || s.Terminal() }

// Item is one input or output item. ID is required and unique within the
// response's input (or output): the host gives id-less client items one
// before storing. Data is the item's JSON, stored and returned verbatim.
type Item struct {
	ID   string
	Data json.RawMessage
}

// Response is a stored response.
type Response struct {
	ID    string // required, chosen by the host ("resp_…")
	Owner string // the verified principal id; "" is refused

	Status             Status
	Model              string // model or agent name
	PreviousResponseID string // "" when the response starts a conversation
	ConversationID     string // MLflow context.conversation_id, or ""

	// Object is the response object as the host serves it again on GET,
	// opaque to the store. The host may leave output out of it and splice
	// Output back in.
	Object json.RawMessage
	// Input is the request's input items (Create only; Get leaves it nil:
	// see InputItems and History).
	Input  []Item
	Output []Item

	// Set by the store.
	CreatedAt       time.Time // Create keeps a non-zero value
	ExpiresAt       time.Time
	CancelRequested bool
	LastSeq         int64 // the last event's sequence number; -1 when none
	Size            int64 // bytes counted against MaxResponseBytes
	// LeaseExpiresAt is when the run of a queued or in_progress response
	// is presumed dead unless its process renews the lease (RenewLease);
	// zero for a response created terminal.
	LeaseExpiresAt time.Time
}

// Lapsed reports whether r is a run whose process stopped renewing its
// lease before now: not terminal, with a lease that has expired.
func (r *Response) Lapsed(now time.Time) bool {
	return !r.Status.Terminal() && !r.LeaseExpiresAt.IsZero() && !r.LeaseExpiresAt.After(now)
}

// LapseFunc gives the final state of a run found with a lapsed lease:
// the object to store and the last event of its log, whose sequence
// number is r.LastSeq+1. r carries the stored Object, Status and LastSeq
// (Output is nil). The host writes them: the store does not know the wire
// format.
type LapseFunc func(r *Response) (object, event json.RawMessage, err error)

// Update changes a non-terminal response. Nil fields are left as they are.
type Update struct {
	Status *Status
	Output []Item // nil: unchanged; non-nil (even empty): replaced
	Object json.RawMessage
}

// Order is a list order.
type Order string

const (
	Desc Order = "desc" // newest first: OpenAI's default for input_items
	Asc  Order = "asc"
)

// ListOptions pages through a response's input items like OpenAI list
// endpoints.
type ListOptions struct {
	After string // an item id: list items after it in Order; "" from the start
	Limit int    // 1..100; zero means 20, above 100 means 100
	Order Order  // zero means Desc
}

// ItemPage is one page of items, with OpenAI's list cursor fields.
type ItemPage struct {
	Items   []Item
	FirstID string
	LastID  string
	HasMore bool
}

// Event is one entry of a response's event log.
type Event struct {
	Seq  int64
	Data json.RawMessage
}

// Progress is what Wait saw last.
type Progress struct {
	Status          Status
	LastSeq         int64
	CancelRequested bool
	LeaseExpiresAt  time.Time // see Response.LeaseExpiresAt
}

// Lapsed is Response.Lapsed for what a wait saw.
func (p Progress) Lapsed(now time.Time) bool {
	r := Response{Status: p.Status, LeaseExpiresAt: p.LeaseExpiresAt}
	return r.Lapsed(now)
}

// Store is the response store. Every method is safe for concurrent use and
// from several handles (replicas) on one database; every method taking an
// owner returns ErrAnonymous for "" and ErrNotFound for an id the owner
// does not have.
type Store interface {
	// Create stores r with its input and output items. Status defaults to
	// completed; CreatedAt to now; ExpiresAt is CreatedAt+TTL. ErrExists
	// when r.ID is taken; *TooLargeError over the size limit.
	Create(ctx context.Context, r *Response) error
	// Get returns the response with its output items (Input is nil).
	Get(ctx context.Context, owner, id string) (*Response, error)
	// Update applies u to a response that is not terminal (ErrFinished
	// otherwise). A terminal status makes the event log final.
	Update(ctx context.Context, owner, id string, u Update) error
	// Delete removes the response, its items and its events.
	Delete(ctx context.Context, owner, id string) error

	// InputItems lists a response's input items. ErrBadCursor when After
	// is not one of them.
	InputItems(ctx context.Context, owner, id string, o ListOptions) (*ItemPage, error)
	// History is the conversation that led to response id and includes it:
	// for each response of its previous_response_id chain, oldest first,
	// its input items then its output items. The chain ends at the first
	// ancestor the owner no longer has (deleted or expired).
	History(ctx context.Context, owner, id string) ([]Item, error)
	// Items returns the items with the given ids (input or output, from
	// any of the owner's responses; the newest when an id repeats), in the
	// order asked. An id the owner does not have is ErrNotFound naming it.
	Items(ctx context.Context, owner string, ids []string) ([]Item, error)
	// LastInConversation is the owner's newest response with that
	// conversation id.
	LastInConversation(ctx context.Context, owner, conversationID string) (*Response, error)

	// AppendEvent adds event seq to the response's log. Sequence numbers
	// start at 0 and go up by one: anything else is a *SequenceError,
	// which is how a duplicate is refused. ErrFinished once the response is
	// terminal, so append the last event before the terminal Update.
	AppendEvent(ctx context.Context, owner, id string, seq int64, data json.RawMessage) error
	// Events returns up to limit events with Seq > after, in order (after
	// -1: from the start; limit <= 0: all).
	Events(ctx context.Context, owner, id string, after int64, limit int) ([]Event, error)
	// WaitEvents blocks until the response has an event after `after` or
	// is terminal, and returns what it saw; ctx's error when ctx ends
	// first. It wakes on writes made through any handle on the database.
	WaitEvents(ctx context.Context, owner, id string, after int64) (Progress, error)

	// RequestCancel sets the cancel-requested flag of a response that is
	// not terminal (the run stops and records StatusCancelled) and returns
	// the response's status; a terminal response is left as it is.
	RequestCancel(ctx context.Context, owner, id string) (Status, error)
	// WaitCancel blocks until cancel is requested for the response (nil),
	// the response is terminal or gone (ErrFinished, ErrNotFound), or ctx
	// ends (its error). A background run watches its own id with it.
	WaitCancel(ctx context.Context, owner, id string) error

	// RenewLease extends the lease of a response that is not terminal to
	// now plus Options.Lease and returns the new expiry: the process running
	// it calls it on a heartbeat (one write per call). ErrFinished when the
	// response is terminal — another process may have ended it as lapsed —
	// and the run should stop.
	RenewLease(ctx context.Context, owner, id string) (time.Time, error)
	// EndLapsed ends the response if its lease has lapsed (Response.Lapsed
	// at the store's clock): in one write, the event fin gives is appended
	// (with no size check: a run must be able to end), the status becomes
	// incomplete and the object fin's. It reports whether it ended it;
	// false, nil when the run is alive or already terminal. Any reader
	// that finds a lapsed run calls it; concurrent calls end it once.
	EndLapsed(ctx context.Context, owner, id string, fin LapseFunc) (bool, error)
	// ExpireLeases is EndLapsed for every owner's lapsed runs (the
	// janitor's sweep), and returns how many it ended.
	ExpireLeases(ctx context.Context, fin LapseFunc) (int64, error)

	// PurgeExpired deletes every response whose ExpiresAt is not after
	// now, with its items and events, and returns how many it deleted.
	PurgeExpired(ctx context.Context, now time.Time) (int64, error)
	// Close releases the handle; waits in progress return ErrClosed.
	Close() error
}

// Options tune a store. The zero value is the documented default.
type Options struct {
	// TTL is how long a response is kept after its creation; zero means
	// DefaultTTL.
	TTL time.Duration
	// MaxResponseBytes caps a response's object, items and events
	// together; zero means DefaultMaxResponseBytes, negative no limit.
	MaxResponseBytes int64
	// Meter records agentrt.store.duration and agentrt.store.errors; nil
	// means the global meter provider's.
	Meter metric.Meter
	// PollInterval bounds how late a wait notices a write made by another
	// process when no notification reached it (SQLite across processes,
	// PostgreSQL while LISTEN is reconnecting); zero means one second.
	PollInterval time.Duration
	// NoMigrate makes Open check the schema instead of migrating it, for
	// deployments that run `serve migrate` as a separate step.
	NoMigrate bool
	// Now is the clock; nil means time.Now. Tests move it.
	Now func() time.Time
	// Lease is how long a background run stays in_progress without its
	// process renewing it (RenewLease) before readers end it as lapsed;
	// zero means DefaultLease. Renew at a third of it. Replicas compare
	// lease times written by other replicas with their own clocks, so it
	// should be well above their clock skew.
	Lease time.Duration
}

// Defaults for Options' zero values.
const (
	DefaultTTL              = 30 * 24 * time.Hour
	DefaultMaxResponseBytes = 16 << 20
	DefaultLease            = 30 * time.Second
	defaultPoll             = time.Second
)

func (o Options) withDefaults() Options {
	if o.TTL <= 0 {
		o.TTL = DefaultTTL
	}
	if o.MaxResponseBytes == 0 {
		o.MaxResponseBytes = DefaultMaxResponseBytes
	}
	if o.PollInterval <= 0 {
		o.PollInterval = defaultPoll
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Lease <= 0 {
		o.Lease = DefaultLease
	}
	return o
}

// Open opens the store that spec names and migrates its schema (unless
// opts.NoMigrate):
//
//	sqlite:PATH                 an SQLite file (created, with its directory, if missing)
//	postgres://… postgresql://… a PostgreSQL database (a libpq URL)
//	memory                      process memory, lost on exit
//	off                         no store: every method returns ErrOff
//
// Several handles may share one SQLite file or PostgreSQL database (that is
// what replicas do); writes through one wake waits on the others.
func Open(ctx context.Context, spec string, opts Options) (Store, error) {
	opts = opts.withDefaults()
	backend, target, err := parseSpec(spec)
	if err != nil {
		return nil, err
	}
	var s Store
	switch backend {
	case "off":
		return Off(), nil
	case "memory":
		s = newMemory(opts)
	case "sqlite":
		s, err = openSQLite(ctx, target, opts)
	case "postgres":
		s, err = openPostgres(ctx, target, opts)
	}
	if err != nil {
		return nil, err
	}
	return instrument(s, backend, opts.Meter), nil
}

// Migrate brings the schema of the database spec names up to date and
// returns; for `serve migrate`. It is a no-op for memory and off.
func Migrate(ctx context.Context, spec string) error {
	s, err := Open(ctx, spec, Options{})
	if err != nil {
		return err
	}
	return s.Close()
}

// Backend names the backend spec selects ("sqlite", "postgres", "memory",
// "off"), or returns the error Open would for a malformed spec.
func Backend(spec string) (string, error) {
	b, _, err := parseSpec(spec)
	return b, err
}

func parseSpec(spec string) (backend, target string, err error) {
	switch {
	case spec == "off" || spec == "memory":
		return spec, "", nil
	case strings.HasPrefix(spec, "sqlite:"):
		p := strings.TrimPrefix(spec, "sqlite:")
		if p == "" {
			return "", "", errors.New(`store: "sqlite:" needs a file path, as in sqlite:/var/lib/agentrt/state.db`)
		}
		return "sqlite", p, nil
	case strings.HasPrefix(spec, "postgres://"), strings.HasPrefix(spec, "postgresql://"):
		if _, err := url.Parse(spec); err != nil {
			// url's error quotes the input, which may hold a password.
			return "", "", errors.New("store: the PostgreSQL URL does not parse")
		}
		return "postgres", spec, nil
	}
	return "", "", fmt.Errorf("store: unknown store %q: want sqlite:PATH, postgres://…, memory or off", redact(spec))
}

// redact hides a URL's password (specs end up in errors and logs).
func redact(spec string) string {
	if u, err := url.Parse(spec); err == nil && u.User != nil {
		return u.Redacted()
	}
	if i := strings.Index(spec, "@"); i >= 0 {
		return "…" + spec[i:]
	}
	return spec
}

// DefaultSQLitePath is where the default SQLite store lives, from the
// environment getenv reads: $XDG_STATE_HOME/agentrt/state.db, else
// $HOME/.local/state/agentrt/state.db, else ./agentrt-state.db (a
// container with no HOME, running in its working directory). Containers
// should mount a volume and name it: sqlite:/var/lib/agentrt/state.db.
func DefaultSQLitePath(getenv func(string) string) string {
	if d := getenv("XDG_STATE_HOME"); filepath.IsAbs(d) {
		return filepath.Join(d, "agentrt", "state.db")
	}
	if h := getenv("HOME"); filepath.IsAbs(h) && h != "/" {
		return filepath.Join(h, ".local", "state", "agentrt", "state.db")
	}
	return "agentrt-state.db"
}
