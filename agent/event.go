package agent

import (
	"encoding/json"

	"github.com/agentrt/agentrt/internal/wireproto"
)

// The stream event types an agent emits (OpenAI's names; MLflow uses the
// same ones). The host writes the others (response.created, …,
// response.completed) around them.
const (
	EventOutputTextDelta = "response.output_text.delta"            // TextDelta
	EventOutputItemDone  = "response.output_item.done"             // ItemDone
	EventAnnotationAdded = "response.output_text.annotation.added" // AnnotationAdded
)

// StreamEvent is one event of a Responses stream. Which members are written
// depends on Type; unknown members are kept in Extra.
type StreamEvent struct {
	Type           string
	SequenceNumber int

	ItemID       string
	OutputIndex  int
	ContentIndex int
	SummaryIndex int

	Delta string // *.delta
	Text  string // response.output_text.done, reasoning summary .done

	Item     *Item     // response.output_item.added / .done
	Part     *Part     // response.content_part.added / .done
	Response *Response // response.created / .in_progress / .completed / …

	Annotation      *Annotation // response.output_text.annotation.added
	AnnotationIndex int

	Name      string // response.function_call_arguments.done
	Arguments string // response.function_call_arguments.done

	// error
	Code    string
	Message string
	Param   string

	// CustomOutputs may ride on any event (MLflow).
	CustomOutputs map[string]any

	Extra map[string]json.RawMessage
}

// MarshalJSON writes the event with the members its type carries.
func (e StreamEvent) MarshalJSON() ([]byte, error) { return e.appendJSON(nil) }

// appendJSON appends the JSON form of e to b; the host reaches it through
// internal/wire to write stream frames into a reused buffer.
func (e *StreamEvent) appendJSON(b []byte) ([]byte, error) {
	w := newObj(b)
	w.str("type", e.Type)
	w.int("sequence_number", e.SequenceNumber)
	var err error
	switch e.Type {
	case wireproto.EventCreated, wireproto.EventInProgress, wireproto.EventCompleted, wireproto.EventFailed, wireproto.EventIncomplete:
		if e.Response != nil {
			w.key("response")
			w.b, err = e.Response.appendJSON(w.b)
		}
	case wireproto.EventOutputItemAdded, EventOutputItemDone:
		w.int("output_index", e.OutputIndex)
		if e.Item != nil {
			w.key("item")
			w.b, err = e.Item.appendJSON(w.b)
		}
	case wireproto.EventContentPartAdded, wireproto.EventContentPartDone:
		e.indexes(&w, true)
		if e.Part != nil {
			w.key("part")
			w.b = e.Part.appendJSON(w.b)
		}
	case EventOutputTextDelta:
		e.indexes(&w, true)
		w.str("delta", e.Delta)
		e.logprobs(&w)
	case wireproto.EventOutputTextDone:
		e.indexes(&w, true)
		w.str("text", e.Text)
		e.logprobs(&w)
	case EventAnnotationAdded:
		e.indexes(&w, true)
		w.int("annotation_index", e.AnnotationIndex)
		if e.Annotation != nil {
			w.key("annotation")
			w.b = e.Annotation.appendJSON(w.b)
		}
	case wireproto.EventFunctionArgsDelta:
		e.indexes(&w, false)
		w.str("delta", e.Delta)
	case wireproto.EventFunctionArgsDone:
		e.indexes(&w, false)
		w.strOpt("name", e.Name)
		w.str("arguments", e.Arguments)
	case wireproto.EventReasoningTextDelta, wireproto.EventReasoningTextDone:
		e.indexes(&w, false)
		w.int("summary_index", e.SummaryIndex)
		if e.Type == wireproto.EventReasoningTextDelta {
			w.str("delta", e.Delta)
		} else {
			w.str("text", e.Text)
		}
	case wireproto.EventError:
		// OpenAI's error event at the top level, and the same facts nested
		// under "error" so that clients which only look there (MLflow's
		// deployment client, openai-go's stream decoder) fail the stream too.
		opt := func(k, v string) {
			if v == "" {
				w.key(k)
				w.b = append(w.b, "null"...)
			} else {
				w.str(k, v)
			}
		}
		opt("code", e.Code)
		w.str("message", e.Message)
		opt("param", e.Param)
		if _, ok := e.Extra["error"]; !ok {
			w.key("error")
			inner := newObj(w.b)
			inner.str("type", errorType(e.Code))
			opt2 := func(k, v string) {
				if v == "" {
					inner.key(k)
					inner.b = append(inner.b, "null"...)
				} else {
					inner.str(k, v)
				}
			}
			opt2("code", e.Code)
			inner.str("message", e.Message)
			opt2("param", e.Param)
			w.b, _ = inner.close()
		}
	default:
		w.strOpt("item_id", e.ItemID)
		if e.ItemID != "" || e.OutputIndex != 0 {
			w.int("output_index", e.OutputIndex)
		}
		w.strOpt("delta", e.Delta)
		w.strOpt("text", e.Text)
		if e.Item != nil {
			w.key("item")
			w.b, err = e.Item.appendJSON(w.b)
		}
		if e.Response != nil && err == nil {
			w.key("response")
			w.b, err = e.Response.appendJSON(w.b)
		}
		w.strOpt("code", e.Code)
		w.strOpt("message", e.Message)
		w.strOpt("param", e.Param)
	}
	if err != nil {
		return nil, err
	}
	if e.CustomOutputs != nil {
		w.value("custom_outputs", e.CustomOutputs)
	}
	w.extra(e.Extra)
	return w.close()
}

func errorType(code string) string {
	switch code {
	case "", "server_error", "internal_error", "INTERNAL_ERROR":
		return "server_error"
	case "timeout", "request_timeout":
		return "timeout_error"
	}
	return "invalid_request_error"
}

func (e *StreamEvent) indexes(w *objWriter, content bool) {
	w.str("item_id", e.ItemID)
	w.int("output_index", e.OutputIndex)
	if content {
		w.int("content_index", e.ContentIndex)
	}
}

func (e *StreamEvent) logprobs(w *objWriter) {
	if raw, ok := e.Extra["logprobs"]; ok {
		_ = raw // written with the extras
		return
	}
	w.key("logprobs")
	w.b = append(w.b, '[', ']')
}

// UnmarshalJSON reads any event, keeping unknown members.
func (e *StreamEvent) UnmarshalJSON(data []byte) error {
	if err := checkJSON(data); err != nil {
		return err
	}
	return e.decode(data)
}

func (e *StreamEvent) decode(data []byte) error {
	*e = StreamEvent{}
	extra, err := forEachField(data, func(k string, raw json.RawMessage) (bool, error) {
		switch k {
		case "type":
			return true, decodeString(raw, &e.Type)
		case "sequence_number":
			return true, decodeInt(raw, &e.SequenceNumber)
		case "item_id":
			return true, decodeString(raw, &e.ItemID)
		case "output_index":
			return true, decodeInt(raw, &e.OutputIndex)
		case "content_index":
			return true, decodeInt(raw, &e.ContentIndex)
		case "summary_index":
			return true, decodeInt(raw, &e.SummaryIndex)
		case "delta":
			if len(raw) > 0 && raw[0] != '"' && !isNull(raw) {
				return false, nil // not a text delta: keep verbatim
			}
			return true, decodeString(raw, &e.Delta)
		case "text":
			return true, decodeString(raw, &e.Text)
		case "item":
			if isNull(raw) {
				return true, nil
			}
			e.Item = new(Item)
			return true, e.Item.decode(raw)
		case "part":
			if isNull(raw) {
				return true, nil
			}
			e.Part = new(Part)
			return true, e.Part.decode(raw)
		case "response":
			if isNull(raw) {
				return true, nil
			}
			e.Response = new(Response)
			return true, e.Response.decode(raw)
		case "annotation":
			if isNull(raw) {
				return true, nil
			}
			e.Annotation = new(Annotation)
			return true, e.Annotation.decode(raw)
		case "annotation_index":
			return true, decodeInt(raw, &e.AnnotationIndex)
		case "name":
			return true, decodeString(raw, &e.Name)
		case "arguments":
			return true, decodeString(raw, &e.Arguments)
		case "code":
			if len(raw) > 0 && raw[0] != '"' && !isNull(raw) {
				return false, nil
			}
			return true, decodeString(raw, &e.Code)
		case "message":
			return true, decodeString(raw, &e.Message)
		case "param":
			return true, decodeString(raw, &e.Param)
		case "custom_outputs":
			if isNull(raw) {
				return true, nil
			}
			return true, decodeValue(raw, &e.CustomOutputs)
		case "error":
			// The nested copy of an error event's facts is rebuilt on write;
			// MLflow's bare {"error": "…"} chunk becomes the message.
			if e.Message == "" && len(raw) > 0 && raw[0] == '"' {
				_ = decodeString(raw, &e.Message)
			}
			if len(raw) > 0 && raw[0] == '{' {
				var inner struct {
					Code    *string `json:"code"`
					Message string  `json:"message"`
					Param   *string `json:"param"`
				}
				if json.Unmarshal(raw, &inner) == nil {
					if e.Message == "" {
						e.Message = inner.Message
					}
					if e.Code == "" && inner.Code != nil {
						e.Code = *inner.Code
					}
					if e.Param == "" && inner.Param != nil {
						e.Param = *inner.Param
					}
					return true, nil
				}
			}
			return false, nil
		}
		return false, nil
	})
	e.Extra = extra
	if err == nil && e.Type == "" && e.Message != "" {
		if _, ok := extra["error"]; ok {
			e.Type = wireproto.EventError
		}
	}
	return err
}

func decodeInt(raw json.RawMessage, dst *int) error {
	if isNull(raw) {
		return nil
	}
	return decodeValue(raw, dst)
}
