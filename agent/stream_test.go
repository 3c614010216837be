package agent_test

import (
	"context"
	"errors"
	"testing"

	"github.com/agentrt/agentrt/agent"
	"github.com/agentrt/agentrt/internal/wireproto"
)

type streamFunc func(ctx context.Context, req *agent.Request, emit agent.Emit) error

func (f streamFunc) PredictStream(ctx context.Context, req *agent.Request, emit agent.Emit) error {
	return f(ctx, req, emit)
}

// TestFromStreamFoldsDeltas: FromStream folds a stream as the host does for
// response.completed, so the text of deltas is not lost when the agent
// sends no output_item.done for it, or one without content; items keep the
// order in which they first appeared, and usage and custom_outputs of the
// agent's own response.completed are kept.
func TestFromStreamFoldsDeltas(t *testing.T) {
	s := streamFunc(func(ctx context.Context, req *agent.Request, emit agent.Emit) error {
		for _, ev := range []*agent.StreamEvent{
			agent.TextDelta("Hello, ", "m1"),
			agent.TextDelta("partial", "m2"), // never done: closed at the end
			agent.TextDelta("world", "m1"),
			agent.ItemDone(agent.Item{Type: agent.TypeMessage, ID: "m1"}), // no content: the deltas' text
			agent.ItemDone(agent.FunctionCallItem("fc1", "c1", "f", "{}")),
			{Type: wireproto.EventCompleted, Response: &agent.Response{Usage: &agent.Usage{TotalTokens: 7}, CustomOutputs: map[string]any{"k": "v"}}},
		} {
			if err := emit(ev); err != nil {
				return err
			}
		}
		return nil
	})
	resp, err := agent.FromStream(s).Predict(context.Background(), &agent.Request{})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, it := range resp.Output {
		got = append(got, it.ID+"="+it.Text())
	}
	want := []string{"m1=Hello, world", "m2=partial", "fc1="}
	if len(got) != len(want) || got[0] != want[0] || got[1] != want[1] || got[2] != want[2] {
		t.Errorf("output %q, want %q", got, want)
	}
	if resp.Usage == nil || resp.Usage.TotalTokens != 7 || resp.CustomOutputs["k"] != "v" {
		t.Errorf("usage %+v, custom_outputs %v", resp.Usage, resp.CustomOutputs)
	}
}

// TestFromStreamRejectsWhatTheHostRejects: a malformed event fails emit
// (and so the call), as it does in a stream.
func TestFromStreamRejectsWhatTheHostRejects(t *testing.T) {
	for name, ev := range map[string]*agent.StreamEvent{
		"nil":                     nil,
		"item done without item":  {Type: agent.EventOutputItemDone},
		"annotation without item": {Type: agent.EventAnnotationAdded, Annotation: &agent.Annotation{Type: "url_citation"}},
	} {
		var emitErr error
		s := streamFunc(func(ctx context.Context, req *agent.Request, emit agent.Emit) error {
			emitErr = emit(ev)
			return emitErr
		})
		if _, err := agent.FromStream(s).Predict(context.Background(), &agent.Request{}); err == nil || !errors.Is(err, emitErr) {
			t.Errorf("%s: Predict error %v, emit error %v", name, err, emitErr)
		}
	}
}

// TestEventNames: the event types agent exports are the wire's.
func TestEventNames(t *testing.T) {
	for got, want := range map[string]string{
		agent.EventOutputTextDelta: wireproto.EventOutputTextDelta,
		agent.EventOutputItemDone:  wireproto.EventOutputItemDone,
		agent.EventAnnotationAdded: wireproto.EventAnnotationAdded,
	} {
		if got != want {
			t.Errorf("%q != %q", got, want)
		}
	}
}
