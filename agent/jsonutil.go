package agent

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/agentrt/agentrt/internal/wireproto"
)

// The wire types marshal and unmarshal by hand: field presence follows the protocol (an
// output_text part always carries "annotations", an index 0 is written), the
// hot path avoids reflection, and unknown fields are spliced back in.

// fieldErr prefixes err with a path element ("input", "[2]", "content").
func fieldErr(prefix string, err error) error { return wireproto.Prefix(prefix, err) }

// forEachField walks the members of a JSON object, calling fn with each key
// and raw value; fn reports whether it knew the key. Unknown members are
// returned (copied) so they survive a round trip. data must already be valid
// JSON (the exported UnmarshalJSON methods check that once, at the top), so
// a hand scan splits it without decoding each level again; raw aliases data.
func forEachField(data []byte, fn func(key string, raw json.RawMessage) (bool, error)) (map[string]json.RawMessage, error) {
	data = bytes.TrimSpace(data)
	if len(data) == 0 || data[0] != '{' {
		return nil, &wireproto.FieldError{Msg: "expected object, got " + wireproto.Kind(data)}
	}
	var extra map[string]json.RawMessage
	i := skipWS(data, 1)
	if i < len(data) && data[i] == '}' {
		return nil, nil
	}
	var seen memberNames
	for i < len(data) {
		if data[i] != '"' {
			return nil, errMalformed
		}
		n, err := skipString(data[i:])
		if err != nil {
			return nil, err
		}
		key, err := unquote(data[i : i+n])
		if err != nil {
			return nil, err
		}
		if seen.repeated(key) {
			// Last-wins would let two readers of one body disagree, and half
			// of a repeated member can survive into the decoded value.
			return nil, &wireproto.FieldError{Field: key, Msg: "member repeated in the same object"}
		}
		i = skipWS(data, i+n)
		if i >= len(data) || data[i] != ':' {
			return nil, errMalformed
		}
		i = skipWS(data, i+1)
		n, err = skipValue(data[i:])
		if err != nil {
			return nil, err
		}
		raw := json.RawMessage(data[i : i+n])
		known, err := fn(key, raw)
		if err != nil {
			return nil, fieldErr(key, err)
		}
		if !known {
			if extra == nil {
				extra = make(map[string]json.RawMessage)
			}
			extra[key] = cloneRaw(raw)
		}
		i = skipWS(data, i+n)
		if i < len(data) && data[i] == ',' {
			i = skipWS(data, i+1)
			continue
		}
		if i < len(data) && data[i] == '}' {
			return extra, nil
		}
		return nil, errMalformed
	}
	return nil, errMalformed
}

// memberNames remembers an object's member names to find a repeated one:
// a linear search while the object is small (every object of the protocol),
// a map past that so a huge object stays linear.
type memberNames struct {
	small [16]string
	n     int
	big   map[string]struct{}
}

func (m *memberNames) repeated(k string) bool {
	if m.big != nil {
		if _, ok := m.big[k]; ok {
			return true
		}
		m.big[k] = struct{}{}
		return false
	}
	for _, x := range m.small[:m.n] {
		if x == k {
			return true
		}
	}
	if m.n < len(m.small) {
		m.small[m.n] = k
		m.n++
		return false
	}
	m.big = make(map[string]struct{}, 2*len(m.small))
	for _, x := range m.small {
		m.big[x] = struct{}{}
	}
	m.big[k] = struct{}{}
	return false
}

// splitArray splits a valid JSON array into its elements (aliasing data).
func splitArray(data json.RawMessage, dst *[]json.RawMessage) error {
	data = bytes.TrimSpace(data)
	if len(data) == 0 || data[0] != '[' {
		return &wireproto.FieldError{Msg: "expected array, got " + wireproto.Kind(data)}
	}
	out := (*dst)[:0]
	i := skipWS(data, 1)
	if i < len(data) && data[i] == ']' {
		*dst = out
		return nil
	}
	for i < len(data) {
		n, err := skipValue(data[i:])
		if err != nil {
			return err
		}
		out = append(out, data[i:i+n])
		i = skipWS(data, i+n)
		if i < len(data) && data[i] == ',' {
			i = skipWS(data, i+1)
			continue
		}
		if i < len(data) && data[i] == ']' {
			*dst = out
			return nil
		}
		break
	}
	return errMalformed
}

var errMalformed = &wireproto.FieldError{Msg: "malformed JSON"}

// checkJSON is the one validation pass at the top of an exported decode:
// data must be exactly one JSON value (surrounding whitespace allowed).
// Everything the hand scan keeps verbatim (unknown members, parameters,
// tool_choice, …) is echoed back later, so it must be valid too. The error
// names the byte offset and the innermost member around it.
func checkJSON(data []byte) error {
	if json.Valid(data) {
		return nil
	}
	var v any
	err := json.Unmarshal(data, &v)
	var se *json.SyntaxError
	if !errors.As(err, &se) {
		return errMalformed // not reached: Valid and Unmarshal agree
	}
	off := min(max(se.Offset, 0), int64(len(data)))
	return &wireproto.FieldError{Field: pathAt(data, int(off)), Offset: off,
		Msg: "invalid JSON at byte " + strconv.FormatInt(off, 10) + ": " + se.Error()}
}

// pathAt returns the JSON path ("tools[0].parameters.x") of the innermost
// member or element open where the off-th byte of data (counting from 1, as
// json.SyntaxError.Offset does) was found wrong; data before it is a valid
// JSON prefix. It runs on the error path only and allocates freely.
func pathAt(data []byte, off int) string {
	type frame struct {
		obj    bool
		key    string // the current member's name (objects)
		hasKey bool
		index  int // the current element (arrays)
	}
	var stack []frame
	expectKey := false
	data = data[:min(max(off-1, 0), len(data))] // up to, not including, the offending byte
	for i := 0; i < len(data); i++ {
		switch c := data[i]; c {
		case '{':
			stack = append(stack, frame{obj: true})
			expectKey = true
		case '[':
			stack = append(stack, frame{})
			expectKey = false
		case '}', ']':
			if len(stack) > 0 {
				stack = stack[:len(stack)-1]
			}
			expectKey = false
		case ',':
			if n := len(stack); n > 0 {
				if stack[n-1].obj {
					stack[n-1].hasKey, expectKey = false, true
				} else {
					stack[n-1].index++
				}
			}
		case ':':
			expectKey = false
		case '"':
			n, err := skipString(data[i:])
			if err != nil {
				i = len(data) // the error is inside this string
				break
			}
			if k := len(stack); expectKey && k > 0 && stack[k-1].obj {
				key, err := unquote(data[i : i+n])
				if err != nil {
					key = string(data[i+1 : i+n-1])
				}
				stack[k-1].key, stack[k-1].hasKey = key, true
			}
			i += n - 1
		}
	}
	var b strings.Builder
	for _, f := range stack {
		switch {
		case f.obj && f.hasKey:
			if b.Len() > 0 {
				b.WriteByte('.')
			}
			b.WriteString(f.key)
		case !f.obj:
			b.WriteByte('[')
			b.WriteString(strconv.Itoa(f.index))
			b.WriteByte(']')
		default:
			return b.String() // between members: the object itself
		}
	}
	return b.String()
}

func cloneRaw(raw json.RawMessage) json.RawMessage {
	if raw == nil {
		return nil
	}
	return append(json.RawMessage(nil), raw...)
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

// skipString returns the length of the JSON string at the start of data.
func skipString(data []byte) (int, error) {
	for i := 1; i < len(data); i++ {
		switch data[i] {
		case '\\':
			i++
		case '"':
			return i + 1, nil
		}
	}
	return 0, errMalformed
}

// skipValue returns the length of the JSON value at the start of data.
func skipValue(data []byte) (int, error) {
	if len(data) == 0 {
		return 0, errMalformed
	}
	switch data[0] {
	case '"':
		return skipString(data)
	case '{', '[':
		depth := 0
		for i := 0; i < len(data); i++ {
			switch data[i] {
			case '"':
				n, err := skipString(data[i:])
				if err != nil {
					return 0, err
				}
				i += n - 1
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return i + 1, nil
				}
			}
		}
		return 0, errMalformed
	}
	for i := 0; i < len(data); i++ {
		switch data[i] {
		case ',', '}', ']', ' ', '\t', '\n', '\r':
			if i == 0 {
				return 0, errMalformed
			}
			return i, nil
		}
	}
	return len(data), nil
}

// unquote decodes a JSON string literal; plain ones (no escapes, valid
// UTF-8) skip the decoder.
func unquote(lit []byte) (string, error) {
	body := lit[1 : len(lit)-1]
	if bytes.IndexByte(body, '\\') < 0 && utf8.Valid(body) {
		return string(body), nil
	}
	var s string
	if err := json.Unmarshal(lit, &s); err != nil {
		return "", &wireproto.FieldError{Msg: wireproto.Describe(err)}
	}
	return s, nil
}

func isNull(raw json.RawMessage) bool {
	return len(raw) == 4 && string(raw) == "null"
}

func decodeString(raw json.RawMessage, dst *string) error {
	if isNull(raw) {
		*dst = ""
		return nil
	}
	if len(raw) < 2 || raw[0] != '"' {
		return &wireproto.FieldError{Msg: "expected string, got " + wireproto.Kind(raw)}
	}
	s, err := unquote(raw)
	*dst = s
	return err
}

func decodeValue(raw json.RawMessage, dst any) error {
	if err := json.Unmarshal(raw, dst); err != nil {
		return &wireproto.FieldError{Msg: wireproto.Describe(err)}
	}
	return nil
}

// objWriter appends one JSON object.
type objWriter struct {
	b     []byte
	first bool
	err   error
}

func newObj(b []byte) objWriter {
	return objWriter{b: append(b, '{'), first: true}
}

func (w *objWriter) key(k string) {
	if w.first {
		w.first = false
	} else {
		w.b = append(w.b, ',')
	}
	w.b = wireproto.AppendString(w.b, k)
	w.b = append(w.b, ':')
}

func (w *objWriter) str(k, v string) {
	w.key(k)
	w.b = wireproto.AppendString(w.b, v)
}

func (w *objWriter) strOpt(k, v string) {
	if v != "" {
		w.str(k, v)
	}
}

func (w *objWriter) int(k string, v int) {
	w.key(k)
	w.b = strconv.AppendInt(w.b, int64(v), 10)
}

func (w *objWriter) intPtr(k string, v *int) {
	if v != nil {
		w.int(k, *v)
	}
}

func (w *objWriter) float(k string, v float64) {
	w.key(k)
	w.b = strconv.AppendFloat(w.b, v, 'f', -1, 64)
}

func (w *objWriter) floatPtr(k string, v *float64) {
	if v != nil {
		w.float(k, *v)
	}
}

func (w *objWriter) bool(k string, v bool) {
	w.key(k)
	w.b = strconv.AppendBool(w.b, v)
}

func (w *objWriter) boolPtr(k string, v *bool) {
	if v != nil {
		w.bool(k, *v)
	}
}

// null writes k: null, for members a schema requires even when unset.
func (w *objWriter) null(k string) {
	w.key(k)
	w.b = append(w.b, "null"...)
}

func (w *objWriter) floatOrNull(k string, v *float64) {
	if v != nil {
		w.float(k, *v)
	} else {
		w.null(k)
	}
}

func (w *objWriter) rawOrNull(k string, v json.RawMessage) {
	if len(v) == 0 {
		w.null(k)
	} else {
		w.raw(k, v)
	}
}

func (w *objWriter) raw(k string, v json.RawMessage) {
	if len(v) == 0 {
		return
	}
	w.key(k)
	w.b = append(w.b, v...)
}

// value marshals v with encoding/json (cold fields: maps of any, options).
func (w *objWriter) value(k string, v any) {
	data, err := json.Marshal(v)
	if err != nil {
		if w.err == nil {
			w.err = fmt.Errorf("%s: %w", k, err)
		}
		return
	}
	w.key(k)
	w.b = append(w.b, data...)
}

func (w *objWriter) extra(m map[string]json.RawMessage) {
	if len(m) == 0 {
		return
	}
	for _, k := range slices.Sorted(maps.Keys(m)) {
		w.raw(k, m[k])
	}
}

func (w *objWriter) close() ([]byte, error) {
	w.b = append(w.b, '}')
	return w.b, w.err
}

// settings points at the generation settings that a request carries and its
// response echoes, so both decode them the same way.
type settings struct {
	temperature, topP  **float64
	maxOutputTokens    **int
	truncation         *string
	reasoning, text    *json.RawMessage
	user, prevResponse *string
	parallelToolCalls  **bool
}

// decode reads member k into its setting; ok is false when k is not one.
func (s settings) decode(k string, raw json.RawMessage) (ok bool, err error) {
	switch k {
	case "temperature":
		return true, decodeOptFloat(raw, s.temperature)
	case "top_p":
		return true, decodeOptFloat(raw, s.topP)
	case "max_output_tokens":
		return true, decodeOptInt(raw, s.maxOutputTokens)
	case "truncation":
		return true, decodeString(raw, s.truncation)
	case "reasoning":
		if !isNull(raw) {
			*s.reasoning = cloneRaw(raw)
		}
		return true, nil
	case "text":
		if !isNull(raw) {
			*s.text = cloneRaw(raw)
		}
		return true, nil
	case "user":
		return true, decodeString(raw, s.user)
	case "previous_response_id":
		return true, decodeString(raw, s.prevResponse)
	case "parallel_tool_calls":
		return true, decodeOptBool(raw, s.parallelToolCalls)
	}
	return false, nil
}

// decodeList decodes a JSON array element by element with the element
// type's own decoder; null is an empty list, and a failing element's error
// names its index.
func decodeList[T any, P interface {
	*T
	decode([]byte) error
}](data json.RawMessage) ([]T, error) {
	if isNull(data) {
		return nil, nil
	}
	var raws []json.RawMessage
	if err := splitArray(data, &raws); err != nil {
		return nil, err
	}
	out := make([]T, len(raws))
	for i, raw := range raws {
		if err := P(&out[i]).decode(raw); err != nil {
			return nil, fieldErr("["+strconv.Itoa(i)+"]", err)
		}
	}
	return out, nil
}
