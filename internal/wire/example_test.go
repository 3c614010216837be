package wire_test

import (
	"fmt"

	"github.com/agentrt/agentrt/internal/wire"
)

func ExampleDecodeRequest() {
	req, err := wire.DecodeRequest([]byte(`{"input":[{"role":"user","content":"hi"}],"context":{"conversation_id":"c1"}}`))
	if err == nil {
		err = wire.Validate(req)
	}
	fmt.Println(req.LastUserText(), req.ConversationID(), err)

	_, err = wire.DecodeRequest([]byte(`{"input":[{"role":"user","content":7}]}`))
	fmt.Println(err)
	req, _ = wire.DecodeRequest([]byte(`{"input":[{"role":"robot","content":"x"}]}`))
	fmt.Println(wire.Validate(req))
	// Output:
	// hi c1 <nil>
	// input[0].content: expected string or array, got number
	// input[0].role: must be one of user, assistant, system, developer; got "robot"
}
