package agent

import (
	"crypto/rand"
	"encoding/hex"

	"github.com/agentrt/agentrt/internal/wireproto"
)

// The helpers below build the items and events MLflow's ResponsesAgent
// helpers build (create_text_output_item, create_text_delta, …). Item
// helpers take the item's id first.

// NewID returns prefix + "_" + 32 random hex digits, e.g. NewID("msg").
func NewID(prefix string) string {
	var raw [16]byte
	_, _ = rand.Read(raw[:]) // crypto/rand.Read never fails (Go 1.24+)
	var buf [64]byte         // on the stack: the string conversion is the only allocation
	b := append(buf[:0], prefix...)
	b = append(b, '_')
	b = hex.AppendEncode(b, raw[:])
	return string(b)
}

// TextItem is an assistant message with one output_text part.
func TextItem(id, text string, annotations ...Annotation) Item {
	return Item{
		Type: TypeMessage,
		ID:   id,
		Role: "assistant",
		Content: PartsContent(Part{
			Type:        wireproto.PartOutputText,
			Text:        text,
			Annotations: annotations,
		}),
	}
}

// TextDelta is a piece of the text of the message item itemID.
func TextDelta(delta, itemID string) *StreamEvent {
	return &StreamEvent{Type: EventOutputTextDelta, ItemID: itemID, Delta: delta}
}

// FunctionCallItem is a tool call made by the model; arguments is JSON text.
func FunctionCallItem(id, callID, name, arguments string) Item {
	return Item{Type: TypeFunctionCall, ID: id, CallID: callID, Name: name, Arguments: arguments}
}

// FunctionCallOutputItem is the result of the tool call callID.
func FunctionCallOutputItem(callID, output string) Item {
	return Item{Type: TypeFunctionCallOutput, CallID: callID, Output: TextContent(output)}
}

// ReasoningItem is a reasoning summary; the id may be empty (the host makes
// one).
func ReasoningItem(id, reasoningText string) Item {
	return Item{
		Type:    TypeReasoning,
		ID:      id,
		Summary: []Part{{Type: wireproto.PartSummaryText, Text: reasoningText}},
	}
}

// MCPApprovalRequestItem asks the client to approve an MCP tool call.
func MCPApprovalRequestItem(id, arguments, name, serverLabel string) Item {
	return Item{Type: TypeMCPApprovalRequest, ID: id, Arguments: arguments, Name: name, ServerLabel: serverLabel}
}

// MCPApprovalResponseItem answers an MCP approval request.
func MCPApprovalResponseItem(id, approvalRequestID string, approve bool, reason string) Item {
	return Item{
		Type:              TypeMCPApprovalResponse,
		ID:                id,
		ApprovalRequestID: approvalRequestID,
		Approve:           &approve,
		Reason:            reason,
	}
}

// ItemDone is the event that completes item: in MLflow's semantics the one
// that counts when a stream is aggregated.
func ItemDone(item Item) *StreamEvent {
	return &StreamEvent{Type: EventOutputItemDone, Item: &item}
}

// AnnotationAdded attaches annotation to the text of the message itemID.
func AnnotationAdded(itemID string, annotation Annotation, annotationIndex int) *StreamEvent {
	return &StreamEvent{
		Type:            EventAnnotationAdded,
		ItemID:          itemID,
		Annotation:      &annotation,
		AnnotationIndex: annotationIndex,
	}
}
