package devworkspace

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"
)

// Model serving: endpoint metadata, chat-format invocations, the
// OpenAI-compatible chat/completions and embeddings paths, and the UC
// connection HTTP proxy (external-function).

const servingObjectType = "serving-endpoints"

func (ws *Workspace) registerServing() {
	ws.routeConfig("GET /api/2.0/serving-endpoints", ws.handleServingList)
	ws.routeConfig("GET /api/2.0/serving-endpoints/{name}", ws.handleServingGet)
	ws.routeConfig("POST /serving-endpoints/{name}/invocations", ws.handleInvocations)
	ws.routeConfig("POST /serving-endpoints/chat/completions", ws.handleChatCompletions)
	ws.routeConfig("POST /serving-endpoints/embeddings", ws.handleEmbeddings)
	ws.route("POST /api/2.0/external-function", ws.handleExternalFunction)
}

func apiHash(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])[:16]
}

// servingEndpoint is ServingEndpointDetailed on the wire.
func (ws *Workspace) servingEndpoint(e ServingEndpointConfig, level string) map[string]any {
	entity := map[string]any{
		"name": e.Model, "entity_name": e.Model, "entity_version": "1",
		"state": map[string]string{"deployment": "DEPLOYMENT_READY", "deployment_state_message": ""},
	}
	desc := e.Description
	if desc == "" {
		desc = "Dev workspace endpoint served by the deterministic " + e.Model + " model"
		if e.Model == modelDevLLM && e.ProxyURL != "" {
			desc = "Dev workspace endpoint proxied to an OpenAI-compatible server"
		}
	}
	out := map[string]any{
		"name": e.Name, "id": "se-" + apiHash(e.Name), "creator": vsCreator,
		"creation_timestamp": vsCreated, "last_updated_timestamp": vsCreated,
		"description": desc, "task": e.Task,
		"state":  map[string]string{"ready": "READY", "config_update": "NOT_UPDATING"},
		"config": map[string]any{"served_entities": []any{entity}, "config_version": 1},
	}
	if level != "" {
		out["permission_level"] = level
	}
	return out
}

func (ws *Workspace) handleServingList(w http.ResponseWriter, r *http.Request) {
	p := callerFrom(r.Context()).Principal
	out := []map[string]any{}
	for _, name := range ws.apis.servingOrd {
		if lvl := ws.permissionLevel(p, servingObjectType, name); lvl != "" {
			out = append(out, ws.servingEndpoint(ws.apis.serving[name], lvl))
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"endpoints": out})
}

func (ws *Workspace) handleServingGet(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	e, ok := ws.apis.serving[name]
	if !ok {
		writeError(w, http.StatusNotFound, codeNotFound, "Endpoint with name '%s' does not exist.", name)
		return
	}
	if !ws.requirePermission(w, r, servingObjectType, name, "CAN_VIEW") {
		return
	}
	writeJSON(w, http.StatusOK, ws.servingEndpoint(e, ws.permissionLevel(callerFrom(r.Context()).Principal, servingObjectType, name)))
}

// writeOpenAIError writes an error both client families read: the
// Databricks {"error_code","message"} and OpenAI's {"error":{…}}.
func writeOpenAIError(w http.ResponseWriter, status int, code, format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	typ := "invalid_request_error"
	switch status {
	case http.StatusUnauthorized:
		typ = "authentication_error"
	case http.StatusForbidden:
		typ = "permission_error"
	case http.StatusNotFound:
		typ = "not_found_error"
	}
	if status >= 500 {
		typ = "server_error"
	}
	writeJSON(w, status, map[string]any{
		"error_code": code, "message": msg,
		"error": map[string]any{"message": msg, "type": typ, "code": code},
	})
}

// queryableEndpoint resolves an endpoint for a query and checks CAN_QUERY.
func (ws *Workspace) queryableEndpoint(w http.ResponseWriter, r *http.Request, name, wantTask string) (ServingEndpointConfig, bool) {
	e, ok := ws.apis.serving[name]
	if !ok {
		writeOpenAIError(w, http.StatusNotFound, codeNotFound, "Endpoint with name '%s' does not exist.", name)
		return e, false
	}
	if err := ws.checkPermission(callerFrom(r.Context()).Principal, servingObjectType, name, "CAN_QUERY"); err != nil {
		writeOpenAIError(w, http.StatusForbidden, codePermissionDenied, "%s", err.Error())
		return e, false
	}
	if wantTask != "" && e.Task != wantTask {
		writeOpenAIError(w, http.StatusBadRequest, codeInvalidParam, "endpoint %s serves task %s, not %s", name, e.Task, wantTask)
		return e, false
	}
	return e, true
}

func readBody(w http.ResponseWriter, r *http.Request) ([]byte, bool) {
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 16<<20))
	if err != nil {
		writeOpenAIError(w, http.StatusBadRequest, codeBadRequest, "cannot read request body: %v", err)
		return nil, false
	}
	return b, true
}

func (ws *Workspace) handleInvocations(w http.ResponseWriter, r *http.Request) {
	e, ok := ws.queryableEndpoint(w, r, r.PathValue("name"), "")
	if !ok {
		return
	}
	body, ok := readBody(w, r)
	if !ok {
		return
	}
	w.Header().Set("served-model-name", e.Model)
	if e.Task == taskEmbeddings {
		ws.serveEmbeddings(w, e, body)
		return
	}
	ws.serveChat(w, r, e, body, "")
}

func (ws *Workspace) handleChatCompletions(w http.ResponseWriter, r *http.Request) {
	if e, body, ok := ws.openAIEndpoint(w, r, taskChat); ok {
		ws.serveChat(w, r, e, body, e.Name) // the body's model named the endpoint
	}
}

func (ws *Workspace) handleEmbeddings(w http.ResponseWriter, r *http.Request) {
	if e, body, ok := ws.openAIEndpoint(w, r, taskEmbeddings); ok {
		ws.serveEmbeddings(w, e, body)
	}
}

// openAIEndpoint reads an OpenAI-compatible request, whose "model" names the
// serving endpoint, and checks the caller may query it for task. On failure
// it has written the error and returns false.
func (ws *Workspace) openAIEndpoint(w http.ResponseWriter, r *http.Request, task string) (ServingEndpointConfig, []byte, bool) {
	body, ok := readBody(w, r)
	if !ok {
		return ServingEndpointConfig{}, nil, false
	}
	var head struct {
		Model string `json:"model"`
	}
	if err := json.Unmarshal(body, &head); err != nil || head.Model == "" {
		writeOpenAIError(w, http.StatusBadRequest, codeInvalidParam, "model (the serving endpoint name) is required")
		return ServingEndpointConfig{}, nil, false
	}
	e, ok := ws.queryableEndpoint(w, r, head.Model, task)
	return e, body, ok
}

// serveChat answers a chat request with the dev model or the proxy.
// bodyModel is the body's "model" when the caller has read it ("" if not).
func (ws *Workspace) serveChat(w http.ResponseWriter, r *http.Request, e ServingEndpointConfig, body []byte, bodyModel string) {
	if e.ProxyURL != "" {
		ws.proxyChat(w, r, e, body, bodyModel)
		return
	}
	var req chatRequest
	if err := json.Unmarshal(body, &req); err != nil {
		writeOpenAIError(w, http.StatusBadRequest, codeBadRequest, "invalid JSON body: %v", err)
		return
	}
	if err := validateChat(&req); err != nil {
		writeOpenAIError(w, http.StatusBadRequest, codeInvalidParam, "%s", err.Error())
		return
	}
	reply := devLLM(&req)
	prompt := 0
	for _, m := range req.Messages {
		prompt += countTokens(m.text()) + 1
	}
	completion := countTokens(reply.Content)
	for _, tc := range reply.ToolCalls {
		completion += countTokens(tc.Function.Arguments) + 1
	}
	usage := map[string]int{"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}
	id := "chatcmpl-" + callID(req.Messages, "")[5:]
	created := ws.now().Unix()
	if req.Stream {
		includeUsage := req.StreamOptions != nil && req.StreamOptions.IncludeUsage
		streamChat(w, id, created, e.Name, reply, usage, includeUsage)
		return
	}
	msg := map[string]any{"role": "assistant", "content": nil}
	if reply.Content != "" {
		msg["content"] = reply.Content
	}
	if len(reply.ToolCalls) > 0 {
		msg["tool_calls"] = reply.ToolCalls
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"id": id, "object": "chat.completion", "created": created, "model": e.Name,
		"choices": []any{map[string]any{"index": 0, "message": msg, "finish_reason": reply.FinishReason}},
		"usage":   usage,
	})
}

// streamChat writes the reply as OpenAI chat.completion.chunk SSE events:
// the role, the content word by word (or the tool calls), the finish
// reason, optionally usage, then [DONE].
func streamChat(w http.ResponseWriter, id string, created int64, model string, reply devReply, usage map[string]int, includeUsage bool) {
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	send := func(delta map[string]any, finish any, extra map[string]any) {
		chunk := map[string]any{"id": id, "object": "chat.completion.chunk", "created": created, "model": model,
			"choices": []any{map[string]any{"index": 0, "delta": delta, "finish_reason": finish}}}
		if delta == nil {
			chunk["choices"] = []any{}
		}
		for k, v := range extra {
			chunk[k] = v
		}
		b, _ := json.Marshal(chunk)
		fmt.Fprintf(w, "data: %s\n\n", b)
		_ = rc.Flush()
	}
	send(map[string]any{"role": "assistant", "content": ""}, nil, nil)
	if len(reply.ToolCalls) > 0 {
		calls := make([]map[string]any, len(reply.ToolCalls))
		for i, tc := range reply.ToolCalls {
			calls[i] = map[string]any{"index": i, "id": tc.ID, "type": "function",
				"function": map[string]string{"name": tc.Function.Name, "arguments": tc.Function.Arguments}}
		}
		send(map[string]any{"tool_calls": calls}, nil, nil)
	}
	for _, word := range strings.SplitAfter(reply.Content, " ") {
		if word != "" {
			send(map[string]any{"content": word}, nil, nil)
		}
	}
	send(map[string]any{}, reply.FinishReason, nil)
	if includeUsage {
		send(nil, nil, map[string]any{"usage": usage})
	}
	fmt.Fprint(w, "data: [DONE]\n\n")
	_ = rc.Flush()
}

// proxyChat forwards a chat request to the configured OpenAI-compatible
// server, streaming the answer back unchanged. The caller's workspace token
// is never forwarded; the upstream key comes from ProxyAPIKeyEnv.
//
// It is on the path of every dev-llm token, so it adds as little as it can:
// a body that already names the upstream model is forwarded as it came (not
// decoded and re-encoded), the status and headers are flushed as soon as
// the upstream sends them (the client's HTTP stack has set up its stream
// reader before the first chunk, not after it), and each chunk is flushed
// as soon as it is read.
func (ws *Workspace) proxyChat(w http.ResponseWriter, r *http.Request, e ServingEndpointConfig, body []byte, bodyModel string) {
	model := e.ProxyModel
	if model == "" {
		model = e.Name
	}
	out := body
	if bodyModel != model {
		var err error
		if out, err = withModel(body, model); err != nil {
			writeOpenAIError(w, http.StatusBadRequest, codeBadRequest, "invalid JSON body: %v", err)
			return
		}
	}
	target := strings.TrimRight(e.ProxyURL, "/") + "/chat/completions"
	up, err := http.NewRequestWithContext(r.Context(), http.MethodPost, target, bytes.NewReader(out))
	if err != nil {
		writeOpenAIError(w, http.StatusInternalServerError, codeInternal, "bad proxy URL for %s: %v", e.Name, err)
		return
	}
	up.Header.Set("Content-Type", "application/json")
	up.Header.Set("Accept", r.Header.Get("Accept"))
	if e.ProxyAPIKeyEnv != "" {
		if k := os.Getenv(e.ProxyAPIKeyEnv); k != "" {
			up.Header.Set("Authorization", "Bearer "+k)
		}
	}
	resp, err := http.DefaultClient.Do(up)
	if err != nil {
		writeOpenAIError(w, http.StatusBadGateway, "TEMPORARILY_UNAVAILABLE", "dev-llm proxy: upstream %s unreachable", e.ProxyURL)
		return
	}
	defer resp.Body.Close()
	for _, h := range []string{"Content-Type", "Cache-Control"} {
		if v := resp.Header.Get(h); v != "" {
			w.Header().Set(h, v)
		}
	}
	w.WriteHeader(resp.StatusCode)
	rc := http.NewResponseController(w)
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		_ = rc.Flush() // the client sets up its stream reader now, not with the first chunk
	}
	buf := make([]byte, 16<<10)
	for {
		n, err := resp.Body.Read(buf)
		if n > 0 {
			if _, werr := w.Write(buf[:n]); werr != nil {
				return
			}
			_ = rc.Flush()
		}
		if err != nil {
			return
		}
	}
}

// withModel returns the JSON object body with its "model" set to model; the
// other members are copied as they are.
func withModel(body []byte, model string) ([]byte, error) {
	var req map[string]json.RawMessage
	if err := json.Unmarshal(body, &req); err != nil {
		return nil, err
	}
	if req == nil {
		return nil, errors.New("the body must be a JSON object")
	}
	req["model"], _ = json.Marshal(model)
	return json.Marshal(req)
}

// serveEmbeddings answers {"input": string | [string…]} with dev embeddings.
func (ws *Workspace) serveEmbeddings(w http.ResponseWriter, e ServingEndpointConfig, body []byte) {
	var req struct {
		Input          json.RawMessage `json:"input"`
		EncodingFormat string          `json:"encoding_format"`
	}
	if err := json.Unmarshal(body, &req); err != nil {
		writeOpenAIError(w, http.StatusBadRequest, codeBadRequest, "invalid JSON body: %v", err)
		return
	}
	var inputs []string
	var one string
	if json.Unmarshal(req.Input, &one) == nil {
		inputs = []string{one}
	} else if err := json.Unmarshal(req.Input, &inputs); err != nil || len(inputs) == 0 {
		writeOpenAIError(w, http.StatusBadRequest, codeInvalidParam, "input must be a string or a non-empty array of strings")
		return
	}
	if req.EncodingFormat != "" && req.EncodingFormat != "float" && req.EncodingFormat != "base64" {
		writeOpenAIError(w, http.StatusBadRequest, codeInvalidParam, "encoding_format must be float or base64")
		return
	}
	data := make([]map[string]any, len(inputs))
	tokens := 0
	for i, in := range inputs {
		v := Embed(in)
		tokens += countTokens(in)
		var emb any = v
		if req.EncodingFormat == "base64" {
			b := make([]byte, 4*len(v))
			for j, f := range v {
				binary.LittleEndian.PutUint32(b[4*j:], math.Float32bits(f))
			}
			emb = base64.StdEncoding.EncodeToString(b)
		}
		data[i] = map[string]any{"object": "embedding", "index": i, "embedding": emb}
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"object": "list", "data": data, "model": e.Name,
		"usage": map[string]int{"prompt_tokens": tokens, "total_tokens": tokens},
	})
}

// externalFunctionRequest is ExternalFunctionRequest on the wire: headers,
// json and params are JSON documents encoded as strings.
type externalFunctionRequest struct {
	ConnectionName string `json:"connection_name"`
	Method         string `json:"method"`
	Path           string `json:"path"`
	Headers        string `json:"headers"`
	JSON           string `json:"json"`
	Params         string `json:"params"`
	SubDomain      string `json:"sub_domain"`
}

// connection returns the configured UC connection with this name.
func (ws *Workspace) connection(name string) (ConnectionConfig, bool) {
	for _, c := range ws.cfg.Connections {
		if c.Name == name {
			return c, true
		}
	}
	return ConnectionConfig{}, false
}

// connectionAccess finds a connection and checks USE_CONNECTION for p.
func (ws *Workspace) connectionAccess(p *Principal, name string) (ConnectionConfig, error) {
	c, ok := ws.connection(name)
	if !ok {
		return c, &NotFoundError{Kind: "connection", Name: name}
	}
	return c, ws.acl.checkUC(p, PrivUseConnection, "connection", name)
}

// connectionAuth sets the connection's stored credential on an upstream
// request (the caller's workspace token never goes upstream).
func connectionAuth(h http.Header, c ConnectionConfig) {
	h.Del("Authorization")
	if t := c.Options["bearer_token"]; t != "" {
		h.Set("Authorization", "Bearer "+t)
	}
}

func (ws *Workspace) handleExternalFunction(w http.ResponseWriter, r *http.Request) {
	var req externalFunctionRequest
	if !decodeBody(w, r, &req) {
		return
	}
	if req.ConnectionName == "" {
		writeError(w, http.StatusBadRequest, codeInvalidParam, "connection_name is required")
		return
	}
	method := strings.ToUpper(req.Method)
	switch method {
	case "GET", "POST", "PUT", "PATCH", "DELETE":
	default:
		writeError(w, http.StatusBadRequest, codeInvalidParam, "method must be GET, POST, PUT, PATCH or DELETE, got %q", req.Method)
		return
	}
	conn, err := ws.connectionAccess(callerFrom(r.Context()).Principal, req.ConnectionName)
	if err != nil {
		writeErr(w, err)
		return
	}
	var headers, params map[string]string
	for _, f := range []struct {
		name, raw string
		dst       *map[string]string
	}{{"headers", req.Headers, &headers}, {"params", req.Params, &params}} {
		if f.raw == "" {
			continue
		}
		if err := json.Unmarshal([]byte(f.raw), f.dst); err != nil {
			writeError(w, http.StatusBadRequest, codeInvalidParam, "%s must be a JSON object of strings encoded as a string: %v", f.name, err)
			return
		}
	}
	var payload io.Reader
	if req.JSON != "" {
		if !json.Valid([]byte(req.JSON)) {
			writeError(w, http.StatusBadRequest, codeInvalidParam, "json must be a JSON document encoded as a string")
			return
		}
		payload = strings.NewReader(req.JSON)
	}
	base, err := url.Parse(ws.resolveURL(r, conn.URL))
	if err != nil || base.Host == "" {
		writeError(w, http.StatusBadRequest, codeInvalidParam, "connection %s has no usable URL", conn.Name)
		return
	}
	if req.SubDomain != "" {
		base.Host = req.SubDomain + "." + base.Host
	}
	target := base
	if strings.Trim(req.Path, "/") != "" { // "/" means the connection URL itself
		target = base.JoinPath(req.Path)
	}
	q := target.Query()
	for k, v := range params {
		q.Set(k, v)
	}
	target.RawQuery = q.Encode()
	up, err := http.NewRequestWithContext(r.Context(), method, target.String(), payload)
	if err != nil {
		writeError(w, http.StatusBadRequest, codeInvalidParam, "cannot build upstream request: %v", err)
		return
	}
	for k, v := range headers {
		up.Header.Set(k, v)
	}
	if payload != nil && up.Header.Get("Content-Type") == "" {
		up.Header.Set("Content-Type", "application/json")
	}
	connectionAuth(up.Header, conn)
	client := &http.Client{Timeout: 60 * time.Second}
	resp, err := client.Do(up)
	if err != nil {
		writeError(w, http.StatusBadGateway, "TEMPORARILY_UNAVAILABLE", "connection %s: upstream request failed", conn.Name)
		return
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		writeError(w, http.StatusBadGateway, "TEMPORARILY_UNAVAILABLE", "connection %s: reading upstream response failed", conn.Name)
		return
	}
	if resp.StatusCode >= 400 {
		// The SDK turns any >= 400 into an APIError; keep the upstream status
		// and show the upstream body in the message.
		writeError(w, resp.StatusCode, upstreamCode(resp.StatusCode), "connection %s: upstream returned %d: %s", conn.Name, resp.StatusCode, truncateRunes(string(b), 500))
		return
	}
	for _, h := range []string{"Content-Type", "Mcp-Session-Id"} {
		if v := resp.Header.Get(h); v != "" {
			w.Header().Set(h, v)
		}
	}
	w.WriteHeader(resp.StatusCode)
	_, _ = w.Write(b)
}

func upstreamCode(status int) string {
	switch status {
	case 400:
		return codeBadRequest
	case 401:
		return codeUnauthenticated
	case 403:
		return codePermissionDenied
	case 404:
		return "NOT_FOUND"
	case 429:
		return "REQUEST_LIMIT_EXCEEDED"
	}
	return "TEMPORARILY_UNAVAILABLE"
}
