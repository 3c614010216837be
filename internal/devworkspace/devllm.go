package devworkspace

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"unicode/utf8"
)

// dev-llm is a deterministic development model, not a language model. Its
// whole behaviour, so agent loops can be tested exactly:
//
//  1. If the last message is the user's and tools are offered (and
//     tool_choice is not "none"), it scores each tool by how many of the
//     user's words appear in the tool's name and description. The best tool
//     (first one on a tie) with at least one shared word is called, with the
//     user's text in the tool's first required string parameter. A forced
//     tool_choice picks that tool whatever the score.
//  2. If the last messages are tool results, it answers with a summary that
//     quotes each result (long results are truncated).
//  3. Otherwise it answers plainly, repeating the question.
//  4. With a response_format of json_object or json_schema, an answer (not a
//     tool call) is JSON: {"answer": …}, or the simplest instance of the
//     schema with the answer in its first string field.
//
// Call ids are derived from the conversation, so the same conversation
// always yields the same ids, and different calls different ids.

// chatMessage is an OpenAI chat message as the dev model reads it.
type chatMessage struct {
	Role       string          `json:"role"`
	Content    json.RawMessage `json:"content,omitempty"`
	Name       string          `json:"name,omitempty"`
	ToolCalls  []chatToolCall  `json:"tool_calls,omitempty"`
	ToolCallID string          `json:"tool_call_id,omitempty"`
}

type chatToolCall struct {
	Index    *int   `json:"index,omitempty"`
	ID       string `json:"id"`
	Type     string `json:"type"`
	Function struct {
		Name      string `json:"name"`
		Arguments string `json:"arguments"`
	} `json:"function"`
}

type chatTool struct {
	Type     string `json:"type"`
	Function struct {
		Name        string          `json:"name"`
		Description string          `json:"description,omitempty"`
		Parameters  json.RawMessage `json:"parameters,omitempty"`
	} `json:"function"`
}

// chatRequest is the subset of an OpenAI chat completion request the dev
// workspace understands; unknown fields are ignored, as servers do.
type chatRequest struct {
	Model         string          `json:"model"`
	Messages      []chatMessage   `json:"messages"`
	Tools         []chatTool      `json:"tools,omitempty"`
	ToolChoice    json.RawMessage `json:"tool_choice,omitempty"`
	Stream        bool            `json:"stream,omitempty"`
	StreamOptions *struct {
		IncludeUsage bool `json:"include_usage"`
	} `json:"stream_options,omitempty"`
	MaxTokens      int             `json:"max_tokens,omitempty"`
	ResponseFormat *responseFormat `json:"response_format,omitempty"`
}

// text returns the message content as plain text: a string, or the text
// parts of a content array.
func (m chatMessage) text() string {
	if len(m.Content) == 0 || string(m.Content) == "null" {
		return ""
	}
	var s string
	if json.Unmarshal(m.Content, &s) == nil {
		return s
	}
	var parts []struct {
		Type string `json:"type"`
		Text string `json:"text"`
	}
	if json.Unmarshal(m.Content, &parts) == nil {
		var b strings.Builder
		for _, p := range parts {
			if p.Text != "" {
				if b.Len() > 0 {
					b.WriteString("\n")
				}
				b.WriteString(p.Text)
			}
		}
		return b.String()
	}
	return string(m.Content)
}

// devReply is what the dev model decided: either content or tool calls.
type devReply struct {
	Content      string
	ToolCalls    []chatToolCall
	FinishReason string // "stop" or "tool_calls"
}

// validateChat checks the request shape the way a real endpoint would.
func validateChat(req *chatRequest) error {
	if len(req.Messages) == 0 {
		return fmt.Errorf("messages must contain at least one message")
	}
	for i, m := range req.Messages {
		switch m.Role {
		case "system", "user", "assistant", "developer":
		case "tool":
			if m.ToolCallID == "" {
				return fmt.Errorf("messages[%d]: a tool message needs tool_call_id", i)
			}
		default:
			return fmt.Errorf("messages[%d]: unknown role %q", i, m.Role)
		}
	}
	if err := validateFormat(req.ResponseFormat); err != nil {
		return err
	}
	for i, t := range req.Tools {
		if t.Type != "function" || t.Function.Name == "" {
			return fmt.Errorf("tools[%d]: want type \"function\" with a function name", i)
		}
		if len(t.Function.Parameters) > 0 {
			var v map[string]any
			if err := json.Unmarshal(t.Function.Parameters, &v); err != nil {
				return fmt.Errorf("tools[%d] (%s): parameters must be a JSON schema object: %v", i, t.Function.Name, err)
			}
		}
	}
	return nil
}

// devLLM computes the dev model's reply to req.
func devLLM(req *chatRequest) devReply {
	r := devAnswer(req)
	if r.Content != "" {
		r.Content = formatReply(req.ResponseFormat, r.Content)
	}
	return r
}

func devAnswer(req *chatRequest) devReply {
	last := req.Messages[len(req.Messages)-1]
	switch last.Role {
	case "tool":
		return devReply{Content: summariseToolResults(req.Messages), FinishReason: "stop"}
	case "user":
		if tc, ok := chooseTool(req, last.text()); ok {
			return devReply{ToolCalls: []chatToolCall{tc}, FinishReason: "tool_calls"}
		}
		return devReply{Content: plainAnswer(last.text()), FinishReason: "stop"}
	}
	return devReply{Content: plainAnswer(lastUserText(req.Messages)), FinishReason: "stop"}
}

func lastUserText(msgs []chatMessage) string {
	for i := len(msgs) - 1; i >= 0; i-- {
		if msgs[i].Role == "user" {
			return msgs[i].text()
		}
	}
	return ""
}

func plainAnswer(q string) string {
	q = strings.TrimSpace(q)
	if q == "" {
		return "Hello! I am dev-llm, the deterministic development model of the dev workspace. Ask me a question."
	}
	return fmt.Sprintf("You asked: %q. I am dev-llm, a deterministic development model, so I cannot reason about it; offer me a matching tool and I will call it.", truncateRunes(q, 300))
}

// toolChoice decodes tool_choice: "auto" (default), "none", "required", or
// {"type":"function","function":{"name":…}}.
func toolChoice(raw json.RawMessage) (mode, forced string) {
	if len(raw) == 0 || string(raw) == "null" {
		return "auto", ""
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s, ""
	}
	var obj struct {
		Function struct {
			Name string `json:"name"`
		} `json:"function"`
	}
	if json.Unmarshal(raw, &obj) == nil && obj.Function.Name != "" {
		return "function", obj.Function.Name
	}
	return "auto", ""
}

// toolWords are the terms of a tool's name and description; names are split
// on the separators tool names use (catalog__schema__fn, get-weather).
func toolWords(t chatTool) []string {
	name := strings.NewReplacer("__", " ", "_", " ", "-", " ", ".", " ").Replace(t.Function.Name)
	return tokenize(name + " " + t.Function.Description)
}

// chooseTool picks the tool to call for the user's text, if any.
func chooseTool(req *chatRequest, user string) (chatToolCall, bool) {
	if len(req.Tools) == 0 {
		return chatToolCall{}, false
	}
	mode, forced := toolChoice(req.ToolChoice)
	if mode == "none" {
		return chatToolCall{}, false
	}
	userToks := tokenize(user)
	best, bestScore := -1, 0
	for i, t := range req.Tools {
		if mode == "function" {
			if t.Function.Name == forced {
				best = i
				break
			}
			continue
		}
		words := toolWords(t)
		score := 0
		seen := map[string]bool{}
		for _, u := range userToks {
			if !seen[u] && slices.Contains(words, u) {
				seen[u] = true
				score++
			}
		}
		if score > bestScore {
			best, bestScore = i, score
		}
	}
	if best < 0 && mode == "required" {
		best = 0
	}
	if best < 0 {
		return chatToolCall{}, false
	}
	args, ok := toolArguments(req.Tools[best].Function.Parameters, user)
	if !ok {
		return chatToolCall{}, false
	}
	var tc chatToolCall
	tc.Type = "function"
	tc.Function.Name = req.Tools[best].Function.Name
	tc.Function.Arguments = args
	tc.ID = callID(req.Messages, tc.Function.Name)
	return tc, true
}

// toolArguments fills the first required string parameter with text. A
// tool without required parameters gets {}; a tool whose required
// parameters are not strings cannot be filled and is not called.
func toolArguments(params json.RawMessage, text string) (string, bool) {
	var schema struct {
		Required   []string `json:"required"`
		Properties map[string]struct {
			Type any `json:"type"`
		} `json:"properties"`
	}
	if len(params) > 0 {
		_ = json.Unmarshal(params, &schema) // validated earlier
	}
	if len(schema.Required) == 0 {
		return "{}", true
	}
	for _, name := range schema.Required {
		p, ok := schema.Properties[name]
		if !ok {
			continue
		}
		isString := p.Type == "string"
		if list, ok := p.Type.([]any); ok {
			isString = slices.Contains(list, any("string"))
		}
		if isString {
			b, _ := json.Marshal(map[string]string{name: text})
			return string(b), true
		}
	}
	return "", false
}

// callID is "call_" and a digest of the conversation and tool name.
func callID(msgs []chatMessage, tool string) string {
	h := sha256.New()
	for _, m := range msgs {
		fmt.Fprintf(h, "%s\x00%s\x00%s\x00", m.Role, m.text(), m.ToolCallID)
		for _, tc := range m.ToolCalls {
			fmt.Fprintf(h, "%s\x00%s\x00", tc.ID, tc.Function.Arguments)
		}
	}
	h.Write([]byte(tool))
	return "call_" + hex.EncodeToString(h.Sum(nil))[:24]
}

// summariseToolResults quotes the trailing tool messages, naming each tool
// from the assistant message that called it.
func summariseToolResults(msgs []chatMessage) string {
	names := map[string]string{}
	for _, m := range msgs {
		for _, tc := range m.ToolCalls {
			names[tc.ID] = tc.Function.Name
		}
	}
	start := len(msgs)
	for start > 0 && msgs[start-1].Role == "tool" {
		start--
	}
	var b strings.Builder
	if q := lastUserText(msgs[:start]); q != "" {
		fmt.Fprintf(&b, "Here is what I found for %q:\n", truncateRunes(q, 200))
	} else {
		b.WriteString("Here is what I found:\n")
	}
	for _, m := range msgs[start:] {
		name := names[m.ToolCallID]
		if name == "" {
			name = "tool"
		}
		fmt.Fprintf(&b, "- %s: %s\n", name, truncateRunes(strings.TrimSpace(m.text()), 600))
	}
	return strings.TrimRight(b.String(), "\n")
}

// truncateRunes shortens s to at most n runes, marking the cut with "…".
func truncateRunes(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n-1]) + "…"
}

// countTokens is the dev model's token count: words, roughly.
func countTokens(s string) int { return len(strings.Fields(s)) }
