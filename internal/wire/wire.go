// Package wire is the host's side of the Responses wire format: it decodes
// and validates request bodies, encodes responses and stream events into
// reused buffers, and folds a stream into the response its
// response.completed event carries, with the aggregator behind
// agent.FromStream (one implementation, so that a stream and a Predict of
// the same agent agree). The names of events, statuses and parts are in
// internal/wireproto.
package wire

import (
	"github.com/agentrt/agentrt/agent"
	"github.com/agentrt/agentrt/internal/agentlink"
	"github.com/agentrt/agentrt/internal/wireproto"
)

// FieldError is the error of DecodeRequest and Validate: a request that is
// not JSON or does not match the schema, naming the member.
type FieldError = wireproto.FieldError

// DecodeRequest parses a request body in either dialect: exactly one JSON
// object, with nothing but whitespace after it, and no member name repeated
// in the objects it reads. Every error is a *FieldError naming the
// offending member (and, for malformed JSON, the byte offset); call
// Validate afterwards for the schema rules.
func DecodeRequest(data []byte) (*agent.Request, error) {
	req := new(agent.Request)
	if err := req.UnmarshalJSON(data); err != nil {
		return nil, err
	}
	return req, nil
}

// Package agent sets these in its init, which has run before this
// package's variables are initialised (wire imports agent).
var (
	appendEvent    = agentlink.AppendEvent.(func([]byte, *agent.StreamEvent) ([]byte, error))
	appendResponse = agentlink.AppendResponse.(func([]byte, *agent.Response) ([]byte, error))
	newFold        = agentlink.NewFold.(func(*agent.Response, agentlink.Framer[*agent.Item]) any)
)

// AppendEvent appends the JSON form of ev to b, as json.Marshal(ev) writes
// it, without allocating when b has room.
func AppendEvent(b []byte, ev *agent.StreamEvent) ([]byte, error) { return appendEvent(b, ev) }

// AppendResponse appends the JSON form of r to b, as json.Marshal(r)
// writes it, without allocating when b has room.
func AppendResponse(b []byte, r *agent.Response) ([]byte, error) { return appendResponse(b, r) }

// Framer lets the host write a stream's frames while a Fold folds it:
// Prepare completes an item before it is kept, Opened announces a message
// that deltas started, Done an item completed at its output index.
type Framer = agentlink.Framer[*agent.Item]

type folder interface {
	Add(ev *agent.StreamEvent) (agent.StreamEvent, bool, error)
	Finish()
}

// A Fold folds the events an agent emits into a response: the one
// aggregator, shared with agent.FromStream. It is not safe for concurrent
// use; the host serialises emit.
type Fold struct{ f folder }

// NewFold returns a Fold that merges into resp (its CustomOutputs, and on
// Finish its Output and Usage), calling fr (which may be nil) as items open
// and complete.
func NewFold(resp *agent.Response, fr Framer) Fold {
	return Fold{f: newFold(resp, fr).(folder)}
}

// Add folds ev in. For an event to pass on to the client it returns the
// event with its item id and output index set and pass=true; completed
// items are reported through Framer.Done instead, and the envelope events
// (response.created … response.completed) are the host's to write, so those
// return pass=false. An error means the event is malformed; emit returns it
// to the agent.
func (f Fold) Add(ev *agent.StreamEvent) (out agent.StreamEvent, pass bool, err error) {
	return f.f.Add(ev)
}

// Finish completes the messages left open (through Framer.Done, in output
// order) and sets the response's Output and Usage.
func (f Fold) Finish() { f.f.Finish() }
