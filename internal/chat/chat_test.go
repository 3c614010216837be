package chat_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/agentrt/agentrt/agent"
	"github.com/agentrt/agentrt/internal/chat"
	"github.com/agentrt/agentrt/internal/wire"
	"github.com/agentrt/agentrt/internal/wireproto"
)

func decode(t *testing.T, body string) *chat.Request {
	t.Helper()
	r, err := chat.DecodeRequest([]byte(body))
	if err != nil {
		t.Fatalf("DecodeRequest(%s): %v", body, err)
	}
	if err := wire.Validate(r.Agent); err != nil {
		t.Fatalf("the agent request does not validate: %v", err)
	}
	return r
}

func TestDecodeRequestMapsMessages(t *testing.T) {
	r := decode(t, `{"model":"assistant","stream":true,"stream_options":{"include_usage":true},
		"messages":[
		{"role":"system","content":"Be brief."},
		{"role":"developer","content":[{"type":"text","text":"Cite sources."}]},
		{"role":"user","name":"al","content":[{"type":"text","text":"What is "},{"type":"image_url","image_url":{"url":"https://x/y.png","detail":"low"}},{"type":"file","file":{"file_id":"f1","filename":"a.pdf"}}]},
		{"role":"assistant","content":null,"tool_calls":[{"id":"call_1","type":"function","function":{"name":"lookup","arguments":"{\"q\":1}"}},{"id":"call_2","type":"function","function":{"name":"other","arguments":"{}"}}]},
		{"role":"tool","tool_call_id":"call_1","content":"42"},
		{"role":"tool","tool_call_id":"call_2","content":[{"type":"text","text":"a"},{"type":"text","text":"b"}]},
		{"role":"assistant","content":"It is 42.","refusal":"no more"},
		{"role":"user","content":"thanks"}],
		"temperature":0.5,"top_p":0.9,"max_tokens":10,"max_completion_tokens":64,"user":"u1","metadata":{"k":"v"},
		"reasoning_effort":"low","verbosity":"high","n":1,"logprobs":false,"tools":[],"tool_choice":"auto",
		"response_format":{"type":"text"},"modalities":["text"],"stop":["\n"],"seed":7}`)
	if !r.Stream || !r.IncludeUsage || r.Model != "assistant" {
		t.Errorf("stream=%v include_usage=%v model=%q", r.Stream, r.IncludeUsage, r.Model)
	}
	a := r.Agent
	got, err := json.Marshal(a.Input)
	if err != nil {
		t.Fatal(err)
	}
	want := `[{"type":"message","role":"system","content":"Be brief."},` +
		`{"type":"message","role":"developer","content":[{"type":"input_text","text":"Cite sources."}]},` +
		`{"type":"message","role":"user","content":[{"type":"input_text","text":"What is "},{"type":"input_image","image_url":"https://x/y.png","detail":"low"},{"type":"input_file","file_id":"f1","filename":"a.pdf"}],"name":"al"},` +
		`{"type":"function_call","call_id":"call_1","name":"lookup","arguments":"{\"q\":1}"},` +
		`{"type":"function_call","call_id":"call_2","name":"other","arguments":"{}"},` +
		`{"type":"function_call_output","call_id":"call_1","output":"42"},` +
		`{"type":"function_call_output","call_id":"call_2","output":"ab"},` +
		`{"type":"message","role":"assistant","content":[{"type":"output_text","text":"It is 42.","annotations":[],"logprobs":[]},{"type":"refusal","refusal":"no more"}]},` +
		`{"type":"message","role":"user","content":"thanks"}]`
	if string(got) != want {
		t.Errorf("input\n got %s\nwant %s", got, want)
	}
	if a.LastUserText() != "thanks" || !a.Stream || a.Model != "assistant" {
		t.Errorf("LastUserText %q stream %v model %q", a.LastUserText(), a.Stream, a.Model)
	}
	if *a.Temperature != 0.5 || *a.TopP != 0.9 || *a.MaxOutputTokens != 64 || a.User != "u1" || a.Metadata["k"] != "v" {
		t.Errorf("settings: %+v", a)
	}
	if string(a.Reasoning) != `{"effort":"low"}` || string(a.Text) != `{"verbosity":"high"}` {
		t.Errorf("reasoning %s text %s", a.Reasoning, a.Text)
	}
	if string(a.Extra["stop"]) != `["\n"]` || string(a.Extra["seed"]) != "7" || len(a.Extra) != 2 {
		t.Errorf("extra = %s", a.Extra)
	}
}

func TestDecodeRequestRefuses(t *testing.T) {
	user := `"messages":[{"role":"user","content":"hi"}]`
	cases := []struct{ name, body, param, msg string }{
		{"malformed", `{"messages":`, "", "invalid JSON at byte"},
		{"trailing data", `{` + user + `} x`, "", "invalid JSON"},
		{"not an object", `[]`, "", "expected object"},
		{"repeated member", `{` + user + `,"model":"a","model":"b"}`, "model", "repeated"},
		{"repeated nested", `{"messages":[{"role":"user","role":"user","content":"x"}]}`, "messages[0].role", "repeated"},
		{"no messages", `{"model":"m"}`, "messages", "required"},
		{"null messages", `{"messages":null}`, "messages", "required"},
		{"empty messages", `{"messages":[]}`, "messages", "at least one"},
		{"bad role", `{"messages":[{"role":"wizard","content":"x"}]}`, "messages[0].role", "must be one of"},
		{"no role", `{"messages":[{"content":"x"}]}`, "messages[0].role", "required"},
		{"function role", `{"messages":[{"role":"function","name":"f","content":"x"}]}`, "messages[0].role", "deprecated"},
		{"no content", `{"messages":[{"role":"user"}]}`, "messages[0].content", "required"},
		{"content number", `{"messages":[{"role":"user","content":3}]}`, "messages[0].content", "expected string or array"},
		{"part type", `{"messages":[{"role":"user","content":[{"type":"video"}]}]}`, "messages[0].content[0].type", "unknown content part"},
		{"image in system", `{"messages":[{"role":"system","content":[{"type":"image_url","image_url":{"url":"u"}}]}]}`, "messages[0].content[0].type", "cannot carry"},
		{"audio input", `{"messages":[{"role":"user","content":[{"type":"input_audio","input_audio":{}}]}]}`, "messages[0].content[0].type", "audio"},
		{"text without text", `{"messages":[{"role":"user","content":[{"type":"text"}]}]}`, "messages[0].content[0].text", "required"},
		{"tool without id", `{"messages":[{"role":"tool","content":"x"}]}`, "messages[0].tool_call_id", "required"},
		{"tool answers nothing", `{"messages":[{"role":"user","content":"q"},{"role":"tool","tool_call_id":"c9","content":"x"}]}`, "messages[1].tool_call_id", "no tool call"},
		{"tool call without id", `{"messages":[{"role":"assistant","tool_calls":[{"type":"function","function":{"name":"f"}}]}]}`, "messages[0].tool_calls[0].id", "required"},
		{"custom tool call", `{"messages":[{"role":"assistant","tool_calls":[{"id":"c","type":"custom","custom":{}}]}]}`, "messages[0].tool_calls[0].type", "function"},
		{"empty assistant", `{"messages":[{"role":"assistant","content":null}]}`, "messages[0].content", "required"},
		{"assistant function_call", `{"messages":[{"role":"assistant","function_call":{"name":"f","arguments":"{}"}}]}`, "messages[0].function_call", "tool_calls"},
		{"n", `{` + user + `,"n":2}`, "n", "n=1"},
		{"logprobs", `{` + user + `,"logprobs":true}`, "logprobs", "log probabilities"},
		{"top_logprobs", `{` + user + `,"top_logprobs":3}`, "top_logprobs", "log probabilities"},
		{"tools", `{` + user + `,"tools":[{"type":"function","function":{"name":"f"}}]}`, "tools", "client tools"},
		{"tool_choice required", `{` + user + `,"tool_choice":"required"}`, "tool_choice", "auto"},
		{"tool_choice named", `{` + user + `,"tool_choice":{"type":"function","function":{"name":"f"}}}`, "tool_choice", "auto"},
		{"functions", `{` + user + `,"functions":[{"name":"f"}]}`, "functions", "client functions"},
		{"json_schema", `{` + user + `,"response_format":{"type":"json_schema","json_schema":{"name":"x","schema":{}}}}`, "response_format", "structured output"},
		{"json_object", `{` + user + `,"response_format":{"type":"json_object"}}`, "response_format", "structured output"},
		{"audio modality", `{` + user + `,"modalities":["text","audio"]}`, "modalities[1]", "text modality"},
		{"audio", `{` + user + `,"audio":{"voice":"x","format":"mp3"}}`, "audio", "audio"},
		{"web search", `{` + user + `,"web_search_options":{}}`, "web_search_options", "web search"},
		{"temperature type", `{` + user + `,"temperature":"hot"}`, "temperature", "expected number"},
		{"max_tokens type", `{` + user + `,"max_tokens":1.5}`, "max_tokens", "expected integer"},
		{"stream type", `{` + user + `,"stream":"yes"}`, "stream", "expected boolean"},
		{"metadata value", `{` + user + `,"metadata":{"k":1}}`, "metadata.k", "expected string"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := chat.DecodeRequest([]byte(tc.body))
			var fe *wire.FieldError
			if !errors.As(err, &fe) {
				t.Fatalf("err = %v, want an *wire.FieldError", err)
			}
			if fe.Field != tc.param || !strings.Contains(fe.Msg, tc.msg) {
				t.Errorf("got field %q msg %q; want field %q, msg containing %q", fe.Field, fe.Msg, tc.param, tc.msg)
			}
		})
	}
}

// answer is a finished agent response with tool activity around two
// messages, the second with a citation.
func answer() *agent.Response {
	two := 2
	five := 5
	return &agent.Response{
		Status: wireproto.StatusCompleted,
		Output: []agent.Item{
			agent.FunctionCallItem("fc_1", "call_1", "lookup", `{"q":1}`),
			agent.FunctionCallOutputItem("call_1", "42"),
			agent.ReasoningItem("rs_1", "thinking"),
			agent.TextItem("msg_1", "Héllo. "),
			{Type: agent.TypeMCPApprovalRequest, ID: "ap", Name: "x", ServerLabel: "s"},
			agent.TextItem("msg_2", "It is \"42\".", agent.Annotation{Type: wireproto.AnnotationURLCitation,
				URL: "https://example.com/a", Title: "A", StartIndex: &two, EndIndex: &five}),
		},
		Usage: &agent.Usage{InputTokens: 10, OutputTokens: 5, InputTokensDetails: agent.InputTokensDetails{CachedTokens: 3},
			OutputTokensDetails: agent.OutputTokensDetails{ReasoningTokens: 2}},
	}
}

type completion struct {
	ID      string `json:"id"`
	Object  string `json:"object"`
	Created int64  `json:"created"`
	Model   string `json:"model"`
	Choices []struct {
		Index   int `json:"index"`
		Message struct {
			Role        string            `json:"role"`
			Content     *string           `json:"content"`
			Refusal     *string           `json:"refusal"`
			ToolCalls   []json.RawMessage `json:"tool_calls"`
			Annotations []struct {
				Type        string `json:"type"`
				URLCitation struct {
					URL        string `json:"url"`
					StartIndex int    `json:"start_index"`
					EndIndex   int    `json:"end_index"`
				} `json:"url_citation"`
			} `json:"annotations"`
		} `json:"message"`
		Delta        map[string]any `json:"delta"`
		FinishReason *string        `json:"finish_reason"`
	} `json:"choices"`
	Usage *struct {
		PromptTokens        int `json:"prompt_tokens"`
		CompletionTokens    int `json:"completion_tokens"`
		TotalTokens         int `json:"total_tokens"`
		PromptTokensDetails struct {
			CachedTokens int `json:"cached_tokens"`
		} `json:"prompt_tokens_details"`
		CompletionTokensDetails struct {
			ReasoningTokens int `json:"reasoning_tokens"`
		} `json:"completion_tokens_details"`
	} `json:"usage"`
}

func TestAppendCompletionShowsOnlyTheText(t *testing.T) {
	m := chat.NewMeta("assistant")
	if !strings.HasPrefix(m.ID, "chatcmpl-") || len(m.ID) != len("chatcmpl-")+32 || m.Created == 0 {
		t.Fatalf("meta = %+v", m)
	}
	resp := answer()
	body := chat.AppendCompletion(nil, m, resp)
	var c completion
	if err := json.Unmarshal(body, &c); err != nil {
		t.Fatalf("%v: %s", err, body)
	}
	if c.ID != m.ID || c.Object != "chat.completion" || c.Created != m.Created || c.Model != "assistant" || len(c.Choices) != 1 {
		t.Fatalf("envelope: %s", body)
	}
	msg := c.Choices[0].Message
	if msg.Role != "assistant" || msg.Content == nil || *msg.Content != resp.OutputText() || msg.Refusal != nil || msg.ToolCalls != nil {
		t.Errorf("message: %s", body)
	}
	if *c.Choices[0].FinishReason != "stop" {
		t.Errorf("finish_reason %q", *c.Choices[0].FinishReason)
	}
	// The citation's indexes move past the first message's 7 characters.
	if a := msg.Annotations; len(a) != 1 || a[0].Type != "url_citation" || a[0].URLCitation.StartIndex != 9 || a[0].URLCitation.EndIndex != 12 {
		t.Errorf("annotations: %+v", a)
	}
	u := c.Usage
	if u == nil || u.PromptTokens != 10 || u.CompletionTokens != 5 || u.TotalTokens != 15 ||
		u.PromptTokensDetails.CachedTokens != 3 || u.CompletionTokensDetails.ReasoningTokens != 2 {
		t.Errorf("usage: %+v", u)
	}

	// Truncated: length; no usage reported: none written; only a refusal:
	// content null.
	trunc := &agent.Response{Status: wireproto.StatusIncomplete, IncompleteDetails: json.RawMessage(`{"reason":"max_output_tokens"}`),
		Output: []agent.Item{{Role: "assistant", Content: agent.TextContent("cut sho")}}}
	body = chat.AppendCompletion(nil, m, trunc)
	c = completion{}
	if err := json.Unmarshal(body, &c); err != nil {
		t.Fatal(err)
	}
	if *c.Choices[0].FinishReason != "length" || *c.Choices[0].Message.Content != "cut sho" || c.Usage != nil {
		t.Errorf("truncated: %s", body)
	}
	refused := &agent.Response{Output: []agent.Item{{Type: agent.TypeMessage, Role: "assistant",
		Content: agent.PartsContent(agent.Part{Type: wireproto.PartRefusal, Refusal: "I can't."})}}}
	body = chat.AppendCompletion(nil, m, refused)
	c = completion{}
	if err := json.Unmarshal(body, &c); err != nil {
		t.Fatal(err)
	}
	if c.Choices[0].Message.Content != nil || *c.Choices[0].Message.Refusal != "I can't." {
		t.Errorf("refusal: %s", body)
	}
}

// frames splits an SSE body into its JSON chunks, requiring data-only
// frames and a final [DONE].
func frames(t *testing.T, b []byte) []completion {
	t.Helper()
	var out []completion
	sc := bufio.NewScanner(bytes.NewReader(b))
	done := false
	for sc.Scan() {
		line := sc.Text()
		if line == "" {
			continue
		}
		data, ok := strings.CutPrefix(line, "data: ")
		if !ok || done {
			t.Fatalf("bad line %q (after [DONE]: %v)", line, done)
		}
		if data == "[DONE]" {
			done = true
			continue
		}
		var c completion
		if err := json.Unmarshal([]byte(data), &c); err != nil {
			t.Fatalf("%v: %s", err, data)
		}
		out = append(out, c)
	}
	if !done {
		t.Fatal("no [DONE]")
	}
	return out
}

func TestStreamShowsOnlyTheText(t *testing.T) {
	m := chat.NewMeta("assistant")
	for _, includeUsage := range []bool{false, true} {
		s := chat.NewStream(m, includeUsage)
		b := s.Start(nil)
		events := []*agent.StreamEvent{
			agent.ItemDone(agent.FunctionCallItem("fc_1", "call_1", "lookup", `{}`)),
			{Type: wireproto.EventFunctionArgsDelta, ItemID: "fc_1", Delta: "{}"},
			agent.ItemDone(agent.FunctionCallOutputItem("call_1", "42")),
			{Type: wireproto.EventReasoningTextDelta, ItemID: "rs", Delta: "hmm"},
			agent.TextDelta("One ", "msg_1"),
			agent.TextDelta("two. ", "msg_1"),
			agent.ItemDone(agent.TextItem("msg_1", "One two. ")),
			agent.ItemDone(agent.TextItem("msg_2", "Whole. ")), // no deltas: sent whole
			agent.TextDelta("Anon", ""),
			agent.ItemDone(agent.TextItem("", "Anon")),
			{Type: wireproto.EventCompleted, Response: &agent.Response{Usage: &agent.Usage{InputTokens: 4, OutputTokens: 6, TotalTokens: 10}}},
		}
		for _, ev := range events {
			b = s.Event(b, ev)
		}
		b = s.Finish(b)
		chunks := frames(t, b)
		var text strings.Builder
		for i, c := range chunks {
			if c.ID != m.ID || c.Object != "chat.completion.chunk" || c.Created != m.Created || c.Model != "assistant" {
				t.Errorf("chunk %d envelope: %+v", i, c)
			}
			if includeUsage && i < len(chunks)-1 && c.Usage != nil {
				t.Errorf("chunk %d has usage", i)
			}
			for _, ch := range c.Choices {
				if _, ok := ch.Delta["tool_calls"]; ok {
					t.Errorf("chunk %d has tool_calls", i)
				}
				if s, ok := ch.Delta["content"].(string); ok {
					text.WriteString(s)
				}
			}
		}
		if chunks[0].Choices[0].Delta["role"] != "assistant" {
			t.Errorf("first chunk: %+v", chunks[0])
		}
		if text.String() != "One two. Whole. Anon" {
			t.Errorf("text %q", text.String())
		}
		last := chunks[len(chunks)-1]
		if includeUsage {
			if len(last.Choices) != 0 || last.Usage == nil || last.Usage.TotalTokens != 10 || last.Usage.PromptTokens != 4 {
				t.Errorf("usage chunk: %+v", last)
			}
			last = chunks[len(chunks)-2]
		}
		if len(last.Choices) != 1 || last.Choices[0].FinishReason == nil || *last.Choices[0].FinishReason != "stop" || len(last.Choices[0].Delta) != 0 {
			t.Errorf("finish chunk: %+v", last)
		}
	}
}

func TestStreamLengthAndMissingUsage(t *testing.T) {
	s := chat.NewStream(chat.NewMeta("m"), true)
	b := s.Start(nil)
	b = s.Event(b, &agent.StreamEvent{Type: wireproto.EventIncomplete, Response: &agent.Response{Status: wireproto.StatusIncomplete}})
	chunks := frames(t, s.Finish(b))
	if fr := chunks[1].Choices[0].FinishReason; fr == nil || *fr != "length" {
		t.Errorf("finish_reason = %v", fr)
	}
	if u := chunks[2].Usage; u == nil || u.TotalTokens != 0 {
		t.Errorf("usage = %+v, want zeros", u)
	}
}

func TestModels(t *testing.T) {
	var list struct {
		Object string `json:"object"`
		Data   []struct {
			ID, Object, OwnedBy string
			Created             int64
		} `json:"data"`
	}
	if err := json.Unmarshal(chat.AppendModelList(nil, "a\"b", 7), &list); err != nil {
		t.Fatal(err)
	}
	if list.Object != "list" || len(list.Data) != 1 || list.Data[0].ID != `a"b` || list.Data[0].Object != "model" || list.Data[0].Created != 7 {
		t.Errorf("%+v", list)
	}
}

func FuzzDecodeRequest(f *testing.F) {
	f.Add([]byte(`{"model":"m","messages":[{"role":"user","content":"hi"}]}`))
	f.Add([]byte(`{"messages":[{"role":"assistant","tool_calls":[{"id":"c","type":"function","function":{"name":"f","arguments":"{}"}}]},{"role":"tool","tool_call_id":"c","content":[{"type":"text","text":"x"}]}],"stream":true}`))
	f.Add([]byte(`{"messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"u"}}]}],"x":{"y":[1,"\u00e9"]}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := chat.DecodeRequest(data)
		if err != nil {
			var fe *wire.FieldError
			if !errors.As(err, &fe) {
				t.Fatalf("error %T is not a *wire.FieldError: %v", err, err)
			}
			return
		}
		if err := wire.Validate(r.Agent); err != nil {
			t.Fatalf("decoded request does not validate: %v\n%s", err, data)
		}
		if _, err := json.Marshal(r.Agent); err != nil {
			t.Fatalf("decoded request does not marshal: %v", err)
		}
	})
}
