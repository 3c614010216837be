package agent

import (
	"context"
	"maps"
)

// FromStream turns a streaming agent into one that also answers in one
// piece. Like MLflow's output reducer, only the items of
// response.output_item.done events make up the answer; deltas are ignored.
// custom_outputs found on events are merged (later ones win), and the usage
// of a response.completed event, if the agent sends one, is kept.
// The result still implements StreamAgent, so the host keeps streaming it.
func FromStream(s StreamAgent) Agent {
	if a, ok := s.(Agent); ok {
		return a
	}
	return streamOnly{s}
}

type streamOnly struct{ StreamAgent }

func (s streamOnly) Predict(ctx context.Context, req *Request) (*Response, error) {
	resp := &Response{Output: []Item{}}
	err := s.PredictStream(ctx, req, func(ev *StreamEvent) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		Reduce(resp, ev)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return resp, nil
}

// Unwrap returns the streaming agent (for hosts that look for optional
// interfaces such as Manifester).
func (s streamOnly) Unwrap() StreamAgent { return s.StreamAgent }

// Reduce folds one stream event into resp the way MLflow aggregates a
// stream: output_item.done items are appended, custom_outputs merged, and a
// completed response's usage kept.
func Reduce(resp *Response, ev *StreamEvent) {
	if ev == nil {
		return
	}
	switch ev.Type {
	case EventOutputItemDone:
		if ev.Item != nil {
			resp.Output = append(resp.Output, *ev.Item)
		}
	case EventCompleted:
		if ev.Response != nil {
			if ev.Response.Usage != nil {
				resp.Usage = ev.Response.Usage
			}
			mergeOutputs(resp, ev.Response.CustomOutputs)
		}
	}
	mergeOutputs(resp, ev.CustomOutputs)
}

func mergeOutputs(resp *Response, co map[string]any) {
	if len(co) == 0 {
		return
	}
	if resp.CustomOutputs == nil {
		resp.CustomOutputs = make(map[string]any, len(co))
	}
	maps.Copy(resp.CustomOutputs, co)
}
