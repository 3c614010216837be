package agent_test

import (
	"context"
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
	return emit(agent.ItemDone(agent.TextOutputItem(text, id)))
}

// A streaming agent also answers in one piece through FromStream, which
// keeps only the output_item.done items, as MLflow does.
func ExampleFromStream() {
	a := agent.FromStream(upper{})
	req, _ := agent.DecodeRequest([]byte(`{"input":"hello world"}`))
	resp, _ := a.Predict(context.Background(), req)
	fmt.Println(resp.OutputText())
	// Output: HELLO WORLD
}

func ExampleDecodeRequest() {
	req, err := agent.DecodeRequest([]byte(`{"input":[{"role":"user","content":"hi"}],"custom_inputs":{"k":1},"context":{"conversation_id":"c1"}}`))
	if err == nil {
		err = req.Validate()
	}
	fmt.Println(req.LastUserText(), req.ConversationID(), err)

	_, err = agent.DecodeRequest([]byte(`{"input":[{"role":"user","content":7}]}`))
	fmt.Println(err)
	// Output:
	// hi c1 <nil>
	// input[0].content: expected string or array, got number
}
