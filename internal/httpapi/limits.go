package httpapi

import (
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/agentrt/agentrt/internal/httperr"
	"github.com/agentrt/agentrt/internal/wire"
	"github.com/gin-gonic/gin"
)

// Defaults for Limits.
const (
	DefaultMaxBodyBytes = 10 << 20
	DefaultWriteTimeout = 30 * time.Second
	DefaultRetryAfter   = time.Second
)

// Limits bound what one request may use. Zero values take the defaults.
type Limits struct {
	// MaxBodyBytes caps the request body (413 above it). Default 10 MiB.
	MaxBodyBytes int64
	// MaxConcurrency caps agent requests in flight (503 with Retry-After
	// above it). Zero means no cap.
	MaxConcurrency int
	// RequestTimeout bounds one agent call (504, or an error event once a
	// stream has started). Zero means no bound.
	RequestTimeout time.Duration
	// WriteTimeout bounds each write of an agent request's answer: every
	// stream flush, the JSON answer and any error body get a deadline of
	// now+WriteTimeout when they are written, so answers (including a 504)
	// outlive the net/http server's own WriteTimeout, which counts from
	// the request's start. Default 30s.
	WriteTimeout time.Duration
	// ServerWriteTimeout is the net/http server's own WriteTimeout, when
	// the host knows it. net/http sets that deadline as a request's
	// headers arrive, so a JSON answer written while it is still later
	// than now+WriteTimeout keeps it, and is spared a deadline update of
	// its own. Zero: every answer sets its own.
	ServerWriteTimeout time.Duration
	// RetryAfter is the Retry-After sent with a 503. Default 1s.
	RetryAfter time.Duration
}

func (l Limits) withDefaults() Limits {
	if l.MaxBodyBytes <= 0 {
		l.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if l.WriteTimeout <= 0 {
		l.WriteTimeout = DefaultWriteTimeout
	}
	if l.RetryAfter <= 0 {
		l.RetryAfter = DefaultRetryAfter
	}
	return l
}

func checkContentType(ct string) *httperr.Error {
	if ct == "" || ct == "application/json" {
		return nil // clients that send no type get the benefit of the doubt
	}
	mt, params, _ := strings.Cut(ct, ";")
	if !strings.EqualFold(strings.TrimSpace(mt), "application/json") {
		return httperr.UnsupportedMediaType("content type " + strconv.Quote(ct) + " is not supported; send application/json")
	}
	for p := range strings.SplitSeq(params, ";") {
		k, v, _ := strings.Cut(strings.TrimSpace(p), "=")
		if strings.EqualFold(k, "charset") {
			v = strings.Trim(v, `"`)
			if !strings.EqualFold(v, "utf-8") && !strings.EqualFold(v, "utf8") {
				return httperr.UnsupportedMediaType("charset " + strconv.Quote(v) + " is not supported; send utf-8")
			}
		}
	}
	return nil
}

func (s *Server) readBody(w http.ResponseWriter, r *http.Request, buf []byte) ([]byte, *httperr.Error) {
	limit := s.limits.MaxBodyBytes
	if r.ContentLength > limit {
		return buf, tooLarge(limit)
	}
	if n := r.ContentLength; n > 0 && int64(cap(buf)) < n+1 {
		buf = make([]byte, 0, n+1)
	}
	// Read at most limit+1 bytes (one more tells a body over the limit),
	// into buf as it grows: http.MaxBytesReader would cost an allocation
	// per request for the same bound.
	for {
		if int64(len(buf)) > limit {
			w.Header().Set("Connection", "close") // the rest of the body stays unread
			return buf, tooLarge(limit)
		}
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)] // append picks the growth
		}
		room := buf[len(buf):cap(buf)]
		if left := limit + 1 - int64(len(buf)); int64(len(room)) > left {
			room = room[:left]
		}
		n, err := r.Body.Read(room)
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			break
		}
		if err != nil {
			return buf, httperr.BadRequest("", "could not read the request body")
		}
	}
	if len(buf) == 0 {
		return buf, httperr.BadRequest("", "empty request body; send a JSON object with an input")
	}
	return buf, nil
}

func tooLarge(limit int64) *httperr.Error {
	return httperr.TooLarge("request body exceeds the limit of " + strconv.FormatInt(limit, 10) + " bytes")
}

func badRequest(err error) *httperr.Error {
	var fe *wire.FieldError
	if errors.As(err, &fe) {
		msg := "invalid request: " + fe.Error()
		return httperr.BadRequest(fe.Field, msg)
	}
	return httperr.BadRequest("", "invalid request: "+err.Error())
}

// body checks a POST's content type and reads its body into a pooled
// buffer, which the caller returns with putBuf. When ok is false the error
// has been answered and nothing is held.
func (s *Server) body(c *gin.Context) (body []byte, bp *[]byte, ok bool) {
	r := c.Request
	if e := checkContentType(r.Header.Get("Content-Type")); e != nil {
		s.fail(c, e)
		return nil, nil, false
	}
	bp = getBuf()
	body, e := s.readBody(c.Writer, r, *bp)
	*bp = body[:0]
	if e != nil {
		putBuf(bp)
		s.fail(c, e)
		return nil, nil, false
	}
	return body, bp, true
}
