package agent

import "github.com/agentrt/agentrt/internal/agentlink"

// The host (internal/wire) encodes into reused buffers and frames its
// streams with the aggregator behind FromStream.
func init() {
	agentlink.AppendEvent = func(b []byte, ev *StreamEvent) ([]byte, error) { return ev.appendJSON(b) }
	agentlink.AppendResponse = func(b []byte, r *Response) ([]byte, error) { return r.appendJSON(b) }
	agentlink.NewFold = func(resp *Response, f agentlink.Framer[*Item]) any {
		return &fold{resp: resp, framer: f}
	}
}
