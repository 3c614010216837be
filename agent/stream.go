package agent

import (
	"context"
	"errors"
	"maps"
	"slices"
	"strings"

	"github.com/agentrt/agentrt/internal/agentlink"
	"github.com/agentrt/agentrt/internal/wireproto"
)

// FromStream turns a streaming agent into one that also answers in one
// piece: Predict runs PredictStream and folds the events into a Response
// exactly as the host folds them into the response.completed event of a
// stream, so both answers of one agent agree. Every output_item.done event
// adds its item; text deltas and annotations build a message whose
// output_item.done carries no content (or that never gets one); the
// custom_outputs of every event are merged (later ones win), and the usage
// of a response.completed event, if the agent sends one, is kept. An event
// the host would refuse (a delta-less output_item.done without an item, an
// annotation without an item id) makes emit return an error.
//
// The result still implements StreamAgent, so the host keeps streaming it.
// If s already implements Agent, FromStream returns it unchanged.
func FromStream(s StreamAgent) Agent {
	if a, ok := s.(Agent); ok {
		return a
	}
	return streamOnly{s}
}

type streamOnly struct{ StreamAgent }

func (s streamOnly) Predict(ctx context.Context, req *Request) (*Response, error) {
	f := &fold{resp: &Response{}}
	err := s.PredictStream(ctx, req, func(ev *StreamEvent) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		_, _, err := f.Add(ev)
		return err
	})
	if err != nil {
		return nil, err
	}
	f.Finish()
	return f.resp, nil
}

// Unwrap returns the streaming agent (for hosts that look for optional
// interfaces such as Manifester).
func (s streamOnly) Unwrap() StreamAgent { return s.StreamAgent }

// fold is the one stream aggregator: FromStream's Predict uses it bare, and
// the host (internal/wire) with a framer that writes the client's frames as
// items open and complete.
type fold struct {
	resp   *Response
	slots  []*Item // output items by output index; nil while open
	open   map[string]*openMessage
	anonID string // item id given to deltas that came without one
	usage  *Usage
	framer agentlink.Framer[*Item] // nil in FromStream
}

// openMessage is a message being streamed as deltas.
type openMessage struct {
	index       int
	text        strings.Builder
	annotations []Annotation
}

// Add folds ev in. It returns the event to pass on to a client, with its
// item id and output index set, and pass=true; items are passed on through
// the framer's Done instead, and the envelope events are the host's, so those
// return pass=false.
func (f *fold) Add(ev *StreamEvent) (out StreamEvent, pass bool, err error) {
	if ev == nil {
		return out, false, errors.New("agent: nil stream event")
	}
	f.mergeOutputs(ev.CustomOutputs)
	switch ev.Type {
	case EventOutputTextDelta:
		id := ev.ItemID
		if id == "" {
			if f.anonID == "" {
				f.anonID = NewID("msg")
			}
			id = f.anonID
		}
		o := f.openMessage(id)
		o.text.WriteString(ev.Delta)
		out = *ev
		out.ItemID, out.OutputIndex, out.ContentIndex = id, o.index, 0
		return out, true, nil
	case EventAnnotationAdded:
		if ev.ItemID == "" || ev.Annotation == nil {
			return out, false, errors.New("agent: annotation.added needs item_id and annotation")
		}
		o := f.openMessage(ev.ItemID)
		o.annotations = append(o.annotations, *ev.Annotation)
		out = *ev
		out.OutputIndex, out.ContentIndex = o.index, 0
		return out, true, nil
	case EventOutputItemDone:
		if ev.Item == nil {
			return out, false, errors.New("agent: output_item.done without an item")
		}
		item := *ev.Item
		if item.Kind() == TypeMessage && item.ID == "" && f.anonID != "" {
			item.ID = f.anonID
		}
		if item.ID != "" && item.ID == f.anonID {
			f.anonID = ""
		}
		f.itemDone(&item, ev.CustomOutputs)
		return out, false, nil
	case wireproto.EventCreated, wireproto.EventInProgress:
		return out, false, nil // the host owns the envelope
	case wireproto.EventCompleted, wireproto.EventFailed, wireproto.EventIncomplete:
		// Keep what the agent knows about the whole response; the host
		// sends the terminal event itself.
		if r := ev.Response; r != nil {
			if r.Usage != nil {
				f.usage = r.Usage
			}
			f.mergeOutputs(r.CustomOutputs)
		}
		return out, false, nil
	}
	out = *ev
	if o := f.open[ev.ItemID]; o != nil && ev.ItemID != "" {
		out.OutputIndex = o.index
	}
	return out, true, nil
}

func (f *fold) mergeOutputs(co map[string]any) {
	if len(co) == 0 {
		return
	}
	if f.resp.CustomOutputs == nil {
		f.resp.CustomOutputs = make(map[string]any, len(co))
	}
	maps.Copy(f.resp.CustomOutputs, co)
}

// openMessage gives a message streamed as deltas its output index.
func (f *fold) openMessage(id string) *openMessage {
	if o := f.open[id]; o != nil {
		return o
	}
	o := &openMessage{index: len(f.slots)}
	f.slots = append(f.slots, nil)
	if f.open == nil {
		f.open = make(map[string]*openMessage)
	}
	f.open[id] = o
	if f.framer != nil {
		f.framer.Opened(id, o.index)
	}
	return o
}

// itemDone completes an item: a message opened by deltas takes their text
// and annotations unless it brings content of its own.
func (f *fold) itemDone(item *Item, co map[string]any) {
	o, wasOpen := f.open[item.ID]
	if wasOpen {
		delete(f.open, item.ID)
		if item.Kind() == TypeMessage && len(item.Content.Parts) == 0 && item.Content.Text == "" {
			item.Content = PartsContent(Part{Type: wireproto.PartOutputText, Text: o.text.String(), Annotations: o.annotations})
		}
	} else {
		o = &openMessage{index: len(f.slots)}
		f.slots = append(f.slots, nil)
	}
	if f.framer != nil {
		f.framer.Prepare(item)
	}
	f.slots[o.index] = item
	if f.framer != nil {
		f.framer.Done(item, o.index, wasOpen, co)
	}
}

// Finish completes the messages left open, in output order, and sets the
// response's Output and Usage.
func (f *fold) Finish() {
	ids := slices.Collect(maps.Keys(f.open))
	slices.SortFunc(ids, func(a, b string) int { return f.open[a].index - f.open[b].index })
	for _, id := range ids {
		f.itemDone(&Item{Type: TypeMessage, ID: id, Role: "assistant"}, nil)
	}
	f.resp.Output = make([]Item, 0, len(f.slots))
	for _, it := range f.slots {
		if it != nil {
			f.resp.Output = append(f.resp.Output, *it)
		}
	}
	if f.usage != nil {
		f.resp.Usage = f.usage
	}
}
