package agent

// Accepter is implemented by agents that act on request members the host
// cannot act on for them. Accepts lists them by their Responses names:
//
//   - "tools": function tools the client offers; the agent returns a
//     function_call item for each one the model calls and ends its answer,
//     for the client to run the tool and send the output back (the OpenAI
//     flow).
//   - "tool_choice": "none", "required" or a named function.
//   - "text.format": json_object or json_schema structured output.
//
// An agent may also list a member it knowingly ignores. The host answers a
// request that sets a member its agent does not list with a 400 naming it,
// so that no client believes it was honoured. The host calls Accepts once
// at start-up, looking through wrappers such as FromStream's. agent/loop's
// Loop accepts all three.
type Accepter interface {
	Accepts() []string
}
