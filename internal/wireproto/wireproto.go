// Package wireproto is the vocabulary of the Responses wire format that
// package agent and the host share: the names of stream events, item
// statuses, content parts and annotations, the FieldError of a request that
// does not match the schema, and the one JSON string escaper (used by agent's
// wire types and by the error bodies of internal/httperr). It imports nothing
// of agentrt, so that package agent may use it; internal/wire builds the
// host's codec on top of agent.
package wireproto

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"unicode/utf8"
)

// Stream event types (OpenAI's names; MLflow uses the same ones). Package
// agent exports the three an agent emits.
const (
	EventCreated            = "response.created"
	EventInProgress         = "response.in_progress"
	EventCompleted          = "response.completed"
	EventFailed             = "response.failed"
	EventIncomplete         = "response.incomplete"
	EventOutputItemAdded    = "response.output_item.added"
	EventOutputItemDone     = "response.output_item.done"
	EventContentPartAdded   = "response.content_part.added"
	EventContentPartDone    = "response.content_part.done"
	EventOutputTextDelta    = "response.output_text.delta"
	EventOutputTextDone     = "response.output_text.done"
	EventAnnotationAdded    = "response.output_text.annotation.added"
	EventFunctionArgsDelta  = "response.function_call_arguments.delta"
	EventFunctionArgsDone   = "response.function_call_arguments.done"
	EventReasoningTextDelta = "response.reasoning_summary_text.delta"
	EventReasoningTextDone  = "response.reasoning_summary_text.done"
	EventError              = "error"
)

// Item and response statuses.
const (
	StatusInProgress = "in_progress"
	StatusCompleted  = "completed"
	StatusIncomplete = "incomplete"
	StatusFailed     = "failed"
)

// Content part types.
const (
	PartInputText     = "input_text"
	PartInputImage    = "input_image"
	PartInputFile     = "input_file"
	PartOutputText    = "output_text"
	PartRefusal       = "refusal"
	PartSummaryText   = "summary_text"
	PartReasoningText = "reasoning_text"
)

// Annotation types MLflow accepts on output_text.
const (
	AnnotationURLCitation  = "url_citation"
	AnnotationFileCitation = "file_citation"
	AnnotationFilePath     = "file_path"
)

// FieldError reports a request that does not match the schema, or is not
// JSON. Field is a JSON path such as "input[1].content[0].type"; an empty
// Field means the whole body (or, for a syntax error, that the error is not
// inside any member). Offset is set for syntax errors only: the number of
// bytes of the body read when the error was found, as in json.SyntaxError
// (so the offending byte is the Offset-th, counting from 1).
//
// Every error of agent's UnmarshalJSON methods and of Request.Validate is a
// *FieldError; the host answers it with a 400 naming Field as the param.
type FieldError struct {
	Field  string
	Msg    string
	Offset int64
}

func (e *FieldError) Error() string {
	if e.Field == "" {
		return e.Msg
	}
	return e.Field + ": " + e.Msg
}

// Prefix prefixes err's field with a path element ("input", "[2]",
// "content"); an error that is not a *FieldError becomes one, its message
// describing what encoding/json found.
func Prefix(prefix string, err error) error {
	if err == nil {
		return nil
	}
	var fe *FieldError
	if errors.As(err, &fe) {
		switch {
		case fe.Field == "":
			return &FieldError{Field: prefix, Msg: fe.Msg, Offset: fe.Offset}
		case fe.Field[0] == '[':
			return &FieldError{Field: prefix + fe.Field, Msg: fe.Msg, Offset: fe.Offset}
		default:
			return &FieldError{Field: prefix + "." + fe.Field, Msg: fe.Msg, Offset: fe.Offset}
		}
	}
	return &FieldError{Field: prefix, Msg: Describe(err)}
}

// Describe says what an encoding/json error found, in the words of a
// FieldError ("expected number, got string").
func Describe(err error) string {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		want := te.Type.Kind().String()
		switch want {
		case "slice":
			want = "array"
		case "map", "struct":
			want = "object"
		case "float64", "int", "int64":
			want = "number"
		case "bool":
			want = "boolean"
		}
		return fmt.Sprintf("expected %s, got %s", want, te.Value)
	}
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return "malformed JSON: " + se.Error()
	}
	return err.Error()
}

const hexDigits = "0123456789abcdef"

// AppendString appends s to b as a JSON string. Invalid UTF-8 becomes
// U+FFFD, as encoding/json does; U+2028 and U+2029 are escaped (they break
// JavaScript parsers that eval JSON); HTML characters are left alone (this
// is not HTML).
func AppendString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// Kind names the JSON type of a value ("object", "array", "string",
// "boolean", "null", "number"; "nothing" for blank input), for error
// messages about a member of the wrong type.
func Kind(data []byte) string {
	data = bytes.TrimSpace(data)
	if len(data) == 0 {
		return "nothing"
	}
	switch data[0] {
	case '{':
		return "object"
	case '[':
		return "array"
	case '"':
		return "string"
	case 't', 'f':
		return "boolean"
	case 'n':
		return "null"
	default:
		return "number"
	}
}
