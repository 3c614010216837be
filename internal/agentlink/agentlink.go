// Package agentlink carries the functions that package agent lends the host
// without making them public API: the allocation-free encoders of its wire
// types and the one stream aggregator. Package agent sets the variables in
// its init; internal/wire, which imports agent (so it runs after that init),
// asserts them to their types and is the only reader. They are typed any
// because this package sits below agent and cannot name its types, as in
// grpc's internal package.
package agentlink

var (
	// AppendEvent is func(b []byte, ev *agent.StreamEvent) ([]byte, error).
	AppendEvent any
	// AppendResponse is func(b []byte, r *agent.Response) ([]byte, error).
	AppendResponse any
	// NewFold is func(resp *agent.Response, f Framer[*agent.Item]) any,
	// returning the aggregator behind agent.FromStream; its dynamic type has
	// the methods Add(*agent.StreamEvent) (agent.StreamEvent, bool, error)
	// and Finish(). f may be nil.
	NewFold any
)

// Framer lets the host frame a stream while the aggregator folds it. Item
// is *agent.Item.
type Framer[Item any] interface {
	// Prepare completes an item before it is kept (ids, status, role).
	Prepare(item Item)
	// Opened reports that the message id, streamed as deltas, took the
	// output index.
	Opened(id string, index int)
	// Done reports that item is complete at the output index; wasOpen says
	// whether deltas opened it, co are the custom_outputs its event carried.
	Done(item Item, index int, wasOpen bool, co map[string]any)
}
