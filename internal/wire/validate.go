package wire

import (
	"strconv"

	"github.com/agentrt/agentrt/agent"
	"github.com/agentrt/agentrt/internal/wireproto"
)

// passThroughTypes are item types accepted in input without checks: MLflow's
// pass-through types and the other input item types of OpenAI's protocol.
var passThroughTypes = map[string]bool{
	"file_search_call": true, "computer_call": true, "computer_call_output": true,
	"web_search_call": true, "item_reference": true, "mcp_call": true,
	"mcp_list_tools": true, "custom_tool_call": true, "custom_tool_call_output": true,
	"image_generation_call": true, "code_interpreter_call": true,
	"local_shell_call": true, "local_shell_call_output": true,
}

// Validate applies the ResponsesAgent schema rules MLflow enforces (roles,
// content part types, statuses, the members each item type requires). The
// error is a *wireproto.FieldError naming the member, e.g. "input[0].role".
func Validate(r *agent.Request) error {
	if r.Input == nil {
		return &FieldError{Field: "input", Msg: "required"}
	}
	for i := range r.Input {
		if err := validateItem(&r.Input[i]); err != nil {
			return wireproto.Prefix("input["+strconv.Itoa(i)+"]", err)
		}
	}
	for i := range r.Tools {
		t := &r.Tools[i]
		var err error
		switch {
		case t.Type == "":
			err = &FieldError{Field: "type", Msg: "required"}
		case t.Type == "function" && t.Name == "":
			err = &FieldError{Field: "name", Msg: "required for a function tool"}
		}
		if err != nil {
			return wireproto.Prefix("tools["+strconv.Itoa(i)+"]", err)
		}
	}
	return nil
}

func required(field string) error { return &FieldError{Field: field, Msg: "required"} }

func validateItem(it *agent.Item) error {
	switch it.Status {
	case "", wireproto.StatusInProgress, wireproto.StatusCompleted, wireproto.StatusIncomplete:
	default:
		return &FieldError{Field: "status", Msg: "must be one of in_progress, completed, incomplete; got " + strconv.Quote(it.Status)}
	}
	switch it.Kind() {
	case "":
		return &FieldError{Field: "type", Msg: "required (or a role for a message)"}
	case agent.TypeMessage:
		switch it.Role {
		case "user", "assistant", "system", "developer":
		case "":
			return required("role")
		default:
			return &FieldError{Field: "role", Msg: "must be one of user, assistant, system, developer; got " + strconv.Quote(it.Role)}
		}
		if it.Content.IsZero() {
			return required("content")
		}
		for j := range it.Content.Parts {
			if err := validatePart(&it.Content.Parts[j]); err != nil {
				return wireproto.Prefix("content["+strconv.Itoa(j)+"]", err)
			}
		}
	case agent.TypeFunctionCall:
		switch {
		case it.CallID == "":
			return required("call_id")
		case it.Name == "":
			return required("name")
		}
	case agent.TypeFunctionCallOutput:
		switch {
		case it.CallID == "":
			return required("call_id")
		case it.Output.IsZero():
			return required("output")
		}
	case agent.TypeReasoning:
		if it.Summary == nil {
			return required("summary")
		}
		for j := range it.Summary {
			if it.Summary[j].Type != wireproto.PartSummaryText {
				return &FieldError{Field: "summary[" + strconv.Itoa(j) + "].type", Msg: "must be summary_text"}
			}
		}
	case agent.TypeMCPApprovalRequest:
		switch {
		case it.ID == "":
			return required("id")
		case it.Name == "":
			return required("name")
		case it.ServerLabel == "":
			return required("server_label")
		}
	case agent.TypeMCPApprovalResponse:
		switch {
		case it.ApprovalRequestID == "":
			return required("approval_request_id")
		case it.Approve == nil:
			return required("approve")
		}
	default:
		if !passThroughTypes[it.Type] {
			return &FieldError{Field: "type", Msg: "unknown item type " + strconv.Quote(it.Type)}
		}
	}
	return nil
}

func validatePart(p *agent.Part) error {
	switch p.Type {
	case "":
		return required("type")
	case wireproto.PartInputText, wireproto.PartOutputText:
		for k := range p.Annotations {
			switch p.Annotations[k].Type {
			case wireproto.AnnotationURLCitation, wireproto.AnnotationFileCitation, wireproto.AnnotationFilePath, "container_file_citation":
			default:
				return &FieldError{Field: "annotations[" + strconv.Itoa(k) + "].type",
					Msg: "unknown annotation type " + strconv.Quote(p.Annotations[k].Type)}
			}
		}
	case wireproto.PartInputImage, wireproto.PartInputFile, wireproto.PartRefusal:
	default:
		return &FieldError{Field: "type", Msg: "unsupported content type " + strconv.Quote(p.Type) +
			" (want input_text, input_image, input_file, output_text or refusal)"}
	}
	return nil
}
