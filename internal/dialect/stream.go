package dialect

import (
	"maps"

	"github.com/agentrt/agentrt/agent"
	"github.com/agentrt/agentrt/internal/wireproto"
)

// Stream rewrites an agent's event stream for the OpenAI dialect. It sits
// between the agent's emit and the host's framing: a function_call is held
// back until its function_call_output arrives, and the pair goes out as one
// mcp_call item; calls still unanswered when the agent returns go out by
// Flush as function_call items for the client to run. Argument deltas of
// held calls are dropped, since the item that follows carries them whole.
//
// A Stream is used from one goroutine, like the Emit it wraps.
type Stream struct {
	label string
	next  agent.Emit
	held  []heldCall          // calls awaiting their output, in order
	ids   map[string]struct{} // item ids of held calls (to drop their deltas)
}

// heldCall is a function_call done event held back, with the custom outputs
// it carried (sent with whatever replaces it, so none is lost).
type heldCall struct {
	item agent.Item
	co   map[string]any
}

// NewStream returns the emit to hand the agent for dialect d, and the
// Stream to Flush when the agent returns (nil for MLflow, which needs no
// rewriting).
func NewStream(d Dialect, label string, next agent.Emit) (agent.Emit, *Stream) {
	if d != OpenAI {
		return next, nil
	}
	s := &Stream{label: label, next: next}
	return s.emit, s
}

func (s *Stream) emit(ev *agent.StreamEvent) error {
	if ev == nil {
		return s.next(ev)
	}
	switch ev.Type {
	case wireproto.EventOutputItemAdded:
		if ev.Item != nil && (ev.Item.Type == agent.TypeFunctionCall || ev.Item.Type == agent.TypeFunctionCallOutput) {
			s.hold(ev.Item.ID)
			return nil // the done event decides what goes out
		}
	case wireproto.EventFunctionArgsDelta, wireproto.EventFunctionArgsDone:
		if _, ok := s.ids[ev.ItemID]; ok {
			return nil
		}
	case agent.EventOutputItemDone:
		if ev.Item == nil {
			break
		}
		switch ev.Item.Type {
		case agent.TypeFunctionCall:
			s.held = append(s.held, heldCall{*ev.Item, ev.CustomOutputs})
			s.hold(ev.Item.ID)
			return nil
		case agent.TypeFunctionCallOutput:
			for i, h := range s.held {
				if h.item.CallID == ev.Item.CallID {
					s.held = append(s.held[:i], s.held[i+1:]...)
					item := MCPCall(s.label, &h.item, ev.Item)
					out := *ev
					out.Item = &item
					out.CustomOutputs = merge(h.co, ev.CustomOutputs)
					return s.next(&out)
				}
			}
		}
	}
	return s.next(ev)
}

// hold remembers the id of a call item whose argument events are dropped
// (the map is made on the first call: most answers have none).
func (s *Stream) hold(id string) {
	if id == "" {
		return
	}
	if s.ids == nil {
		s.ids = make(map[string]struct{})
	}
	s.ids[id] = struct{}{}
}

// Flush sends the calls that got no output: the agent leaves them to the
// client. Call it once, after the agent returned without error.
func (s *Stream) Flush() error {
	if s == nil {
		return nil
	}
	for _, h := range s.held {
		ev := agent.ItemDone(h.item)
		ev.CustomOutputs = h.co
		if err := s.next(ev); err != nil {
			return err
		}
	}
	s.held = nil
	return nil
}

// merge returns a with b's entries added (b wins), without modifying either.
func merge(a, b map[string]any) map[string]any {
	if len(a) == 0 {
		return b
	}
	if len(b) == 0 {
		return a
	}
	m := make(map[string]any, len(a)+len(b))
	maps.Copy(m, a)
	maps.Copy(m, b)
	return m
}
