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
//     (first one on a tie) with at least one shared word is called, with
//     arguments taken from the user's words (devllm_args.go: a number for an
//     integer, "100042" for an order_id, the question for a query). A forced
//     tool_choice picks that tool whatever the score. When the best tool
//     needs a value the text lacks, it asks for it instead.
//  2. If the last messages are tool results, it writes a short answer from
//     them (devllm_answer.go): a sentence, bullets with titles and figures,
//     numbered sources; quoted values are never cut.
//  3. Otherwise it answers plainly, repeating the question.
//
// Answers end by saying how many earlier turns the model was given.
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
		tc, missing, tool, ok := chooseTool(req, last.text())
		if ok {
			return devReply{ToolCalls: []chatToolCall{tc}, FinishReason: "tool_calls"}
		}
		return devReply{Content: withHistory(plainAnswer(last.text(), tool, missing), req.Messages), FinishReason: "stop"}
	}
	return devReply{Content: withHistory(plainAnswer(lastUserText(req.Messages), "", nil), req.Messages), FinishReason: "stop"}
}

// withHistory appends the note on earlier turns to an answer.
func withHistory(answer string, msgs []chatMessage) string {
	if note := historyNote(msgs); note != "" {
		return answer + "\n\n" + note
	}
	return answer
}

func lastUserText(msgs []chatMessage) string {
	for i := len(msgs) - 1; i >= 0; i-- {
		if msgs[i].Role == "user" {
			return msgs[i].text()
		}
	}
	return ""
}

// plainAnswer answers without tools: it asks for the value a matching tool
// needs, or says what it is.
func plainAnswer(q, tool string, missing *paramSpec) string {
	q = strings.TrimSpace(q)
	if q == "" {
		return "Hello! I am dev-llm, the deterministic development model of the dev workspace. Ask me a question."
	}
	asked := "You asked a long question."
	if qq, ok := quote(q); ok {
		asked = "You asked: " + qq + "."
	}
	if missing != nil {
		what := missing.Name
		if d := strings.TrimSpace(missing.Description); d != "" {
			what += " (" + strings.TrimSuffix(clipProse(d, maxQuote), ".") + ")"
		}
		return fmt.Sprintf("%s To answer with %s I need the %s, which your message does not give. Which one should I use?", asked, tool, what)
	}
	return asked + " I am dev-llm, a deterministic development model, so I cannot reason about it; offer me a matching tool and I will call it."
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

// chooseTool picks the tool to call for the user's text, if any. When the
// best tool needs a value the text does not offer, it returns that
// parameter and the tool's name instead, so the answer can ask for it.
func chooseTool(req *chatRequest, user string) (tc chatToolCall, missing *paramSpec, tool string, ok bool) {
	if len(req.Tools) == 0 {
		return chatToolCall{}, nil, "", false
	}
	mode, forced := toolChoice(req.ToolChoice)
	if mode == "none" {
		return chatToolCall{}, nil, "", false
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
		return chatToolCall{}, nil, "", false
	}
	args, missing, ok := toolArguments(req.Tools[best].Function.Parameters, user, mode != "auto")
	if !ok {
		return chatToolCall{}, missing, req.Tools[best].Function.Name, false
	}
	tc.Type = "function"
	tc.Function.Name = req.Tools[best].Function.Name
	tc.Function.Arguments = args
	tc.ID = callID(req.Messages, tc.Function.Name)
	return tc, nil, tc.Function.Name, true
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
