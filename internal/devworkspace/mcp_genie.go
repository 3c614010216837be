package devworkspace

import (
	"context"
	"net/http"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"
)

// buildGenieMCP serves one Genie space. Like the managed server it passes
// no conversation history: each call starts a new conversation, asked as
// the caller (CAN_RUN on the space, SELECT on what the answer reads).
func (ws *Workspace) buildGenieMCP(r *http.Request) (*server.MCPServer, error) {
	id := r.PathValue("space_id")
	space := ws.genieSpace(id)
	if space == nil {
		return nil, &NotFoundError{Kind: "Genie space", Name: id}
	}
	s := newMCPServer("databricks-genie-" + id)
	desc := "Asks the Genie space \"" + space.Title + "\" a natural-language question and returns its answer with the SQL it ran and the result rows."
	if space.Description != "" {
		desc += " " + space.Description
	}
	s.AddTool(mcp.NewTool("query_space_"+id,
		mcp.WithDescription(desc),
		mcp.WithString("query", mcp.Required(), mcp.Description("The question to ask.")),
	), func(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		p, err := mcpCaller(ctx)
		if err != nil {
			return nil, err
		}
		q, err := req.RequireString("query")
		if err != nil {
			return toolErr(badRequest("query is required")), nil
		}
		m, err := ws.askGenie(ctx, p, id, "", q)
		if err != nil {
			return toolErr(err), nil
		}
		out := map[string]any{
			"conversation_id": m.ConversationID, "message_id": m.ID, "status": m.Status,
		}
		switch m.Status {
		case genieCompleted:
			out["text"] = m.Text
			out["query"] = m.SQL
			out["description"] = m.Description
			if m.Result != nil {
				rows := resultObjects(m.Result)
				out["row_count"] = len(rows)
				if len(rows) > maxSQLToolRows {
					rows = rows[:maxSQLToolRows]
				}
				out["rows"] = rows
			}
		default:
			out["error"] = m.Error
			res := jsonResult(out)
			res.IsError = true
			return res, nil
		}
		return jsonResult(out), nil
	})
	return s, nil
}
