package tools

import "context"

type conversationKey struct{}

// WithConversationID returns a ctx that tells tools which conversation the
// request belongs to (the request's context.conversation_id), so stateful
// tools such as Genie can continue their own conversation across turns.
func WithConversationID(ctx context.Context, id string) context.Context {
	if id == "" {
		return ctx
	}
	return context.WithValue(ctx, conversationKey{}, id)
}

// ConversationID returns the id set by WithConversationID, or "".
func ConversationID(ctx context.Context) string {
	id, _ := ctx.Value(conversationKey{}).(string)
	return id
}
