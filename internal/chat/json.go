package chat

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"unicode/utf8"

	"github.com/agentrt/agentrt/internal/wire"
	"github.com/agentrt/agentrt/internal/wireproto"
)

// The decoder splits a body it has checked once (json.Valid) by hand, like
// the Responses decoder: each object it reads is walked member by member, a
// repeated member name is an error, and every error is an *wire.FieldError
// whose Field is the chat request's own path ("messages[2].content[0].type"),
// so the host answers with the same 400 body, param included, as the
// Responses route.

func fieldErr(prefix string, err error) error {
	if err == nil {
		return nil
	}
	var fe *wire.FieldError
	if errors.As(err, &fe) {
		switch {
		case fe.Field == "":
			return &wire.FieldError{Field: prefix, Msg: fe.Msg, Offset: fe.Offset}
		case fe.Field[0] == '[':
			return &wire.FieldError{Field: prefix + fe.Field, Msg: fe.Msg, Offset: fe.Offset}
		default:
			return &wire.FieldError{Field: prefix + "." + fe.Field, Msg: fe.Msg, Offset: fe.Offset}
		}
	}
	return &wire.FieldError{Field: prefix, Msg: err.Error()}
}

func msgErr(msg string) error { return &wire.FieldError{Msg: msg} }

// checkJSON requires exactly one JSON value; a syntax error names its byte.
func checkJSON(data []byte) error {
	if json.Valid(data) {
		return nil
	}
	var v json.RawMessage
	err := json.Unmarshal(data, &v)
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return &wire.FieldError{Msg: fmt.Sprintf("invalid JSON at byte %d: %s", se.Offset, se.Error()), Offset: se.Offset}
	}
	return &wire.FieldError{Msg: "invalid JSON"}
}

func skipWS(data []byte, i int) int {
	for i < len(data) {
		switch data[i] {
		case ' ', '\t', '\n', '\r':
			i++
		default:
			return i
		}
	}
	return i
}

// skipValue returns the end of the (valid) JSON value starting at data[i].
func skipValue(data []byte, i int) int {
	switch data[i] {
	case '"':
		return skipString(data, i)
	case '{', '[':
		depth := 0
		for i < len(data) {
			switch data[i] {
			case '"':
				i = skipString(data, i)
				continue
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return i + 1
				}
			}
			i++
		}
		return i
	default: // number, true, false, null
		for i < len(data) {
			switch data[i] {
			case ',', '}', ']', ' ', '\t', '\n', '\r':
				return i
			}
			i++
		}
		return i
	}
}

// skipString returns the end of the (valid) string literal at data[i].
func skipString(data []byte, i int) int {
	for i++; i < len(data); i++ {
		switch data[i] {
		case '\\':
			i++
		case '"':
			return i + 1
		}
	}
	return i
}

// forEachField calls fn with each member of the (valid) JSON object data.
// A repeated member name is an error naming it.
func forEachField(data []byte, fn func(key string, raw []byte) error) error {
	i := skipWS(data, 0)
	if i >= len(data) || data[i] != '{' {
		return msgErr("expected object, got " + wireproto.Kind(data))
	}
	var seen [16]string // members of small objects, without a map
	var more map[string]bool
	n := 0
	i = skipWS(data, i+1)
	for i < len(data) && data[i] != '}' {
		end := skipString(data, i)
		key, err := unquote(data[i:end])
		if err != nil {
			return err
		}
		for _, k := range seen[:min(n, len(seen))] {
			if k == key {
				return &wire.FieldError{Field: key, Msg: "member repeated in the same object"}
			}
		}
		if more[key] {
			return &wire.FieldError{Field: key, Msg: "member repeated in the same object"}
		}
		if n < len(seen) {
			seen[n] = key
		} else {
			if more == nil {
				more = make(map[string]bool)
			}
			more[key] = true
		}
		n++
		i = skipWS(data, end)
		i = skipWS(data, i+1) // ':'
		vend := skipValue(data, i)
		if err := fn(key, data[i:vend]); err != nil {
			return fieldErr(key, err)
		}
		i = skipWS(data, vend)
		if i < len(data) && data[i] == ',' {
			i = skipWS(data, i+1)
		}
	}
	return nil
}

// forEachElem calls fn with each element of the (valid) JSON array data.
func forEachElem(data []byte, fn func(i int, raw []byte) error) error {
	i := skipWS(data, 0)
	if i >= len(data) || data[i] != '[' {
		return msgErr("expected array, got " + wireproto.Kind(data))
	}
	i = skipWS(data, i+1)
	for n := 0; i < len(data) && data[i] != ']'; n++ {
		end := skipValue(data, i)
		if err := fn(n, data[i:end]); err != nil {
			return fieldErr("["+strconv.Itoa(n)+"]", err)
		}
		i = skipWS(data, end)
		if i < len(data) && data[i] == ',' {
			i = skipWS(data, i+1)
		}
	}
	return nil
}

func isNull(raw []byte) bool { return len(raw) == 4 && string(raw) == "null" }

// unquote decodes a string literal; plain ones skip the decoder.
func unquote(lit []byte) (string, error) {
	if len(lit) >= 2 && bytes.IndexByte(lit, '\\') < 0 && utf8.Valid(lit) {
		return string(lit[1 : len(lit)-1]), nil
	}
	var s string
	if err := json.Unmarshal(lit, &s); err != nil {
		return "", msgErr("invalid string")
	}
	return s, nil
}

// str reads a string member; null leaves dst alone.
func str(raw []byte, dst *string) error {
	if isNull(raw) {
		return nil
	}
	if raw[0] != '"' {
		return msgErr("expected string, got " + wireproto.Kind(raw))
	}
	s, err := unquote(raw)
	*dst = s
	return err
}

func boolean(raw []byte, dst *bool) error {
	switch string(raw) {
	case "true":
		*dst = true
	case "false", "null":
		*dst = false
	default:
		return msgErr("expected boolean, got " + wireproto.Kind(raw))
	}
	return nil
}

func optBool(raw []byte, dst **bool) error {
	if isNull(raw) {
		return nil
	}
	var v bool
	if err := boolean(raw, &v); err != nil {
		return err
	}
	*dst = &v
	return nil
}

func optFloat(raw []byte, dst **float64) error {
	if isNull(raw) {
		return nil
	}
	if wireproto.Kind(raw) != "number" {
		return msgErr("expected number, got " + wireproto.Kind(raw))
	}
	v, err := strconv.ParseFloat(string(raw), 64)
	if err != nil {
		return msgErr("number out of range")
	}
	*dst = &v
	return nil
}

func optInt(raw []byte, dst **int) error {
	if isNull(raw) {
		return nil
	}
	if wireproto.Kind(raw) != "number" {
		return msgErr("expected integer, got " + wireproto.Kind(raw))
	}
	v, err := strconv.Atoi(string(raw))
	if err != nil {
		return msgErr("expected integer, got " + string(raw))
	}
	*dst = &v
	return nil
}
