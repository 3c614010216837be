package agent_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/agentrt/agentrt/agent"
)

// upper answers in capitals and streams one delta per word.
type upper struct{}

func (upper) PredictStream(ctx context.Context, req *agent.Request, emit agent.Emit) error {
	text := strings.ToUpper(req.LastUserText())
	id := agent.NewID("msg")
	for _, w := range strings.SplitAfter(text, " ") {
		if err := emit(agent.TextDelta(w, id)); err != nil {
			return err
		}
	}
	return emit(agent.ItemDone(agent.TextItem(id, text)))
}

// A streaming agent also answers in one piece through FromStream, which
// folds the stream exactly as the host folds it for response.completed.
func ExampleFromStream() {
	a := agent.FromStream(upper{})
	req := new(agent.Request)
	_ = json.Unmarshal([]byte(`{"input":"hello world"}`), req)
	resp, _ := a.Predict(context.Background(), req)
	fmt.Println(resp.OutputText())
	// Output: HELLO WORLD
}

// A Request reads either dialect: OpenAI's (a string input) and MLflow's
// (an input list, custom_inputs, context).
func ExampleRequest() {
	var req agent.Request
	err := json.Unmarshal([]byte(`{"input":[{"role":"user","content":"hi"}],"custom_inputs":{"k":1},"context":{"conversation_id":"c1"}}`), &req)
	fmt.Println(req.LastUserText(), req.ConversationID(), req.CustomInputs["k"], err)
	// Output: hi c1 1 <nil>
}
