package httpapi

// state.go: the Responses API's conversation state over internal/store —
// the request fields store, previous_response_id, item_reference input
// items, background and MLflow's context.conversation_id, and saving what
// a request produced. The routes that read stored responses are in
// stateroutes.go, background runs in background.go. See docs/state.md.

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/agentrt/agentrt/agent"
	"github.com/agentrt/agentrt/internal/httperr"
	"github.com/agentrt/agentrt/internal/store"
	"github.com/agentrt/agentrt/internal/wireproto"
)

// storeTimeout bounds one store call made for a request whose own context
// may already be over (the client left after the agent answered: the
// answer is still stored).
const storeTimeout = 10 * time.Second

// typeItemReference is OpenAI's input item that names a stored item.
const typeItemReference = "item_reference"

// stateReq is what a request asks of the store, resolved.
type stateReq struct {
	owner      string       // verified principal id, "" for anonymous
	save       bool         // store the response
	background bool         // background: true
	input      []store.Item // this request's input, references resolved, every item with an id
	prev       string       // the previous response of the stored one
	conv       string       // the conversation id it is stored under
}

// stateOn reports whether the server has a store.
func (s *Server) stateOn() bool { return !store.IsOff(s.store) }

// errStoreOff is the 400 for a state field or route while the store is off.
func errStoreOff(param string) *httperr.Error {
	return httperr.BadRequest(param, "the response store is off (serve --store off): "+
		"previous_response_id, item_reference inputs, background runs and the /v1/responses/{id} routes need it")
}

// notFound is the one answer for a response the caller does not have:
// absent, expired, deleted, another caller's, or asked by a caller who owns
// nothing (anonymous, or a credential refused). Its body depends only on
// the id asked for, so it reveals nothing about anyone else's responses.
func notFound(id string) *httperr.Error {
	e := httperr.NotFound("no response with id " + strconv.Quote(id))
	e.Code = "RESOURCE_DOES_NOT_EXIST"
	return e
}

func itemNotFound(param, id string) *httperr.Error {
	e := httperr.NotFound("no item with id " + strconv.Quote(id))
	e.Code, e.Param = "RESOURCE_DOES_NOT_EXIST", param
	return e
}

// storeError maps a store error to the answer; id names the response asked
// for (its not-found answer). Outages are logged and answered 503.
func (s *Server) storeError(ctx context.Context, op, id string, err error) *httperr.Error {
	var tl *store.TooLargeError
	switch {
	case errors.Is(err, store.ErrNotFound), errors.Is(err, store.ErrAnonymous):
		return notFound(id)
	case errors.Is(err, store.ErrOff):
		return errStoreOff("")
	case errors.As(err, &tl):
		return httperr.TooLarge("the response would be " + strconv.FormatInt(tl.Size, 10) +
			" bytes, over the store's limit of " + strconv.FormatInt(tl.Limit, 10) + " bytes; send store: false to get it unstored")
	case errors.Is(err, store.ErrBadCursor):
		return httperr.BadRequest("after", "after names no input item of response "+strconv.Quote(id))
	}
	s.log.ErrorContext(ctx, "response store failed", "op", op, "error", err)
	return httperr.Unavailable("the response store is unavailable; retry shortly", 1)
}

// requestBackground reads the background member (kept in Extra by the
// decoder) and removes it, so that it is not mistaken for an unsupported
// field.
func requestBackground(req *agent.Request) (bool, *httperr.Error) {
	raw, ok := req.Extra["background"]
	if !ok {
		return false, nil
	}
	delete(req.Extra, "background")
	var bg *bool
	if err := json.Unmarshal(raw, &bg); err != nil {
		return false, httperr.BadRequest("background", "invalid request: background: expected a boolean")
	}
	return bg != nil && *bg, nil
}

func hasItemReference(req *agent.Request) int {
	for i := range req.Input {
		if req.Input[i].Type == typeItemReference {
			return i
		}
	}
	return -1
}

// checkState runs before the caller is known: the state fields a request
// may not use with the store off, and the background member. The handler
// calls it right after the body is validated.
func (s *Server) checkState(req *agent.Request) (background bool, e *httperr.Error) {
	if background, e = requestBackground(req); e != nil {
		return false, e
	}
	if s.stateOn() {
		return background, nil
	}
	switch {
	case req.PreviousResponseID != "":
		return false, errStoreOff("previous_response_id")
	case background:
		return false, errStoreOff("background")
	}
	if i := hasItemReference(req); i >= 0 {
		return false, errStoreOff("input[" + strconv.Itoa(i) + "]")
	}
	return false, nil
}

// beginState runs once the caller is known (after the preparers): it
// decides whether the response is stored, resolves item_reference items,
// and prepends the history of previous_response_id (or of MLflow's
// conversation) to req.Input, so the agent sees the whole conversation.
//
// store: true (the default) from a caller with no verified principal is
// served unstored, as with the store off: the response says store: false.
func (s *Server) beginState(ctx context.Context, req *agent.Request, background bool) (*stateReq, *httperr.Error) {
	if !s.stateOn() {
		return unstored, nil // checkState refused the fields that need it
	}
	owner := agent.FromContext(ctx).Caller.PrincipalID
	save := owner != "" && (req.Store == nil || *req.Store)
	refs := hasItemReference(req) >= 0
	if !save && !background && req.PreviousResponseID == "" && !refs {
		return unstored, nil // stateless: the store is not touched
	}
	st := &stateReq{background: background, owner: owner, save: save}
	if background {
		switch {
		case req.Store != nil && !*req.Store:
			return nil, httperr.BadRequest("background", "background: true needs store: true (a background response is polled from the store)")
		case st.owner == "":
			return nil, httperr.BadRequest("background", "background runs need an authenticated caller: the run is stored under the caller's identity")
		}
	}
	if err := s.resolveInput(ctx, st, req); err != nil {
		return nil, err
	}

	var history []store.Item
	var err error
	switch {
	case req.PreviousResponseID != "":
		st.prev = req.PreviousResponseID
		history, err = s.store.History(ctx, st.owner, st.prev)
		if err != nil {
			e := s.storeError(ctx, "history", st.prev, err)
			if e.Status == 404 {
				e.Param = "previous_response_id"
			}
			return nil, e
		}
	case st.save && req.ConversationID() != "":
		// MLflow's conversation id continues the caller's newest response
		// in it, so both dialects share one conversation.
		st.conv = req.ConversationID()
		last, err := s.store.LastInConversation(ctx, st.owner, st.conv)
		switch {
		case errors.Is(err, store.ErrNotFound):
		case err != nil:
			return nil, s.storeError(ctx, "last_in_conversation", "", err)
		default:
			st.prev = last.ID
			// A client that sends the earlier turns itself (as MLflow
			// clients do) keeps its own history: none is prepended.
			if !holdsEarlierTurns(req.Input) {
				if history, err = s.store.History(ctx, st.owner, last.ID); err != nil && !errors.Is(err, store.ErrNotFound) {
					return nil, s.storeError(ctx, "history", last.ID, err)
				}
			}
		}
	}
	if req.PreviousResponseID != "" && req.ConversationID() != "" && st.save {
		st.conv = req.ConversationID()
	}
	if len(history) > 0 {
		in := make([]agent.Item, 0, len(history)+len(req.Input))
		for _, h := range history {
			var it agent.Item
			if err := json.Unmarshal(h.Data, &it); err != nil {
				return nil, s.storeError(ctx, "history", st.prev, err)
			}
			in = append(in, it)
		}
		req.Input = append(in, req.Input...)
	}
	return st, nil
}

// holdsEarlierTurns reports whether input carries more than new user
// turns: an assistant message, or any item that is not a message.
func holdsEarlierTurns(input []agent.Item) bool {
	for i := range input {
		if input[i].Kind() != agent.TypeMessage || input[i].Role == "assistant" {
			return true
		}
	}
	return false
}

// resolveInput replaces item_reference items with the stored items they
// name, gives every input item an id, and keeps the result as the input to
// store.
func (s *Server) resolveInput(ctx context.Context, st *stateReq, req *agent.Request) *httperr.Error {
	var ids []string
	for i := range req.Input {
		if req.Input[i].Type == typeItemReference {
			if req.Input[i].ID == "" {
				return httperr.BadRequest("input["+strconv.Itoa(i)+"].id", "invalid request: input["+strconv.Itoa(i)+"].id: required for an item_reference")
			}
			ids = append(ids, req.Input[i].ID)
		}
	}
	if len(ids) > 0 {
		items, err := s.store.Items(ctx, st.owner, ids)
		if err != nil {
			if errors.Is(err, store.ErrNotFound) || errors.Is(err, store.ErrAnonymous) {
				// The store's error names the missing id.
				for j, id := range ids {
					if _, e := s.store.Items(ctx, st.owner, []string{id}); e != nil {
						return itemNotFound("input["+strconv.Itoa(refIndex(req.Input, j))+"]", id)
					}
				}
				return itemNotFound("input", ids[0])
			}
			return s.storeError(ctx, "items", "", err)
		}
		k := 0
		for i := range req.Input {
			if req.Input[i].Type != typeItemReference {
				continue
			}
			var it agent.Item
			if err := json.Unmarshal(items[k].Data, &it); err != nil {
				return s.storeError(ctx, "items", "", err)
			}
			req.Input[i] = it
			k++
		}
	}
	if !st.save {
		return nil
	}
	seen := make(map[string]bool, len(req.Input))
	st.input = make([]store.Item, len(req.Input))
	for i := range req.Input {
		it := &req.Input[i]
		if it.ID == "" || seen[it.ID] {
			it.ID = newItemID(it)
		}
		seen[it.ID] = true
		data, err := json.Marshal(storedInput(*it))
		if err != nil {
			return badRequest(err)
		}
		st.input[i] = store.Item{ID: it.ID, Data: data}
	}
	return nil
}

// refIndex is the input index of the j-th item_reference.
func refIndex(input []agent.Item, j int) int {
	for i := range input {
		if input[i].Type == typeItemReference {
			if j == 0 {
				return i
			}
			j--
		}
	}
	return 0
}

func newItemID(it *agent.Item) string {
	switch it.Kind() {
	case agent.TypeMessage:
		return agent.NewID("msg")
	case agent.TypeFunctionCall:
		return agent.NewID("fc")
	case agent.TypeFunctionCallOutput:
		return agent.NewID("fco")
	case agent.TypeReasoning:
		return agent.NewID("rs")
	}
	return agent.NewID("item")
}

// unstored is the state of every request that neither stores nor reads
// the store: shared, so the stateless path allocates nothing; never
// written to (annotate points responses at its save, false).
var unstored = &stateReq{}

// annotate writes the store and background members OpenAI's response
// object carries (store says whether the response was actually stored).
// store is a field of the response, pointing at st.save (no allocation per
// request); background, rarer, goes in Extra.
func (st *stateReq) annotate(resp *agent.Response) {
	if st == nil {
		return
	}
	resp.Store = &st.save
	if st.background {
		if resp.Extra == nil {
			resp.Extra = make(map[string]json.RawMessage, 1)
		}
		resp.Extra["background"] = json.RawMessage("true")
	}
}

// storedForm splits a response into the object the store keeps (without
// its output) and its output items, each with a unique id.
func storedForm(resp *agent.Response) (json.RawMessage, []store.Item, error) {
	out := make([]store.Item, len(resp.Output))
	seen := make(map[string]bool, len(resp.Output))
	for i := range resp.Output {
		it := &resp.Output[i]
		if it.ID == "" || seen[it.ID] {
			it.ID = newItemID(it)
		}
		seen[it.ID] = true
		data, err := json.Marshal(it)
		if err != nil {
			return nil, nil, err
		}
		out[i] = store.Item{ID: it.ID, Data: data}
	}
	output := resp.Output
	resp.Output = []agent.Item{}
	obj, err := json.Marshal(resp)
	resp.Output = output
	return obj, out, err
}

// storeStatus is the stored status of a response an agent answered.
func storeStatus(status string) store.Status {
	if st := store.Status(status); st.Terminal() {
		return st
	}
	return store.StatusCompleted
}

// saveResponse stores a response the request produced (nothing when it is
// not to be stored). It runs after the agent, so it outlives a client that
// has gone: the response exists either way.
func (s *Server) saveResponse(ctx context.Context, st *stateReq, resp *agent.Response) *httperr.Error {
	if st == nil || !st.save {
		return nil
	}
	obj, out, err := storedForm(resp)
	if err != nil {
		return s.storeError(ctx, "encode", resp.ID, err)
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), storeTimeout)
	defer cancel()
	err = s.store.Create(sctx, &store.Response{
		ID: resp.ID, Owner: st.owner, Status: storeStatus(resp.Status), Model: resp.Model,
		PreviousResponseID: st.prev, ConversationID: st.conv,
		Object: obj, Input: st.input, Output: out,
	})
	if err != nil {
		return s.storeError(ctx, "create", resp.ID, err)
	}
	return nil
}

// loadResponse is a stored response as its object: the stored object with
// the current status and output spliced in.
func loadResponse(r *store.Response) (*agent.Response, error) {
	resp := new(agent.Response)
	if err := json.Unmarshal(r.Object, resp); err != nil {
		return nil, err
	}
	resp.Status = string(r.Status)
	resp.Output = make([]agent.Item, len(r.Output))
	for i, it := range r.Output {
		if err := json.Unmarshal(it.Data, &resp.Output[i]); err != nil {
			return nil, err
		}
	}
	return resp, nil
}

// stateAuthError is the answer to a POST whose preparers refused the
// credential: a continue (previous_response_id, item_reference) answers
// like any other request for a response the caller does not have, so a
// stolen or guessed id with a garbage token learns nothing.
func (s *Server) stateAuthError(req *agent.Request, e *httperr.Error) *httperr.Error {
	if e.Status != http.StatusUnauthorized && e.Status != http.StatusForbidden || !s.stateOn() {
		return e
	}
	if req.PreviousResponseID != "" {
		nf := notFound(req.PreviousResponseID)
		nf.Param = "previous_response_id"
		return nf
	}
	if i := hasItemReference(req); i >= 0 {
		return itemNotFound("input["+strconv.Itoa(i)+"]", req.Input[i].ID)
	}
	return e
}

// markReferences types the input items that are only an id as
// item_reference: OpenAI's shorthand, which openai-go sends.
func markReferences(req *agent.Request) {
	for i := range req.Input {
		it := &req.Input[i]
		if it.Type == "" && it.Role == "" && it.ID != "" && it.Status == "" && len(it.Extra) == 0 &&
			it.Content.IsZero() && it.Output.IsZero() && it.CallID == "" && it.Name == "" &&
			it.Arguments == "" && it.Summary == nil && it.EncryptedContent == "" && it.ServerLabel == "" &&
			it.ApprovalRequestID == "" && it.Approve == nil && it.Reason == "" {
			it.Type = typeItemReference
		}
	}
}

// storedInput is an input item as OpenAI lists it back (input_items,
// history): a message typed, with a status, its string content as one
// text part.
func storedInput(it agent.Item) agent.Item {
	if it.Kind() != agent.TypeMessage {
		return it
	}
	it.Type = agent.TypeMessage
	if it.Status == "" {
		it.Status = wireproto.StatusCompleted
	}
	if it.Content.Parts == nil {
		pt := wireproto.PartInputText
		if it.Role == "assistant" {
			pt = wireproto.PartOutputText
		}
		it.Content = agent.PartsContent(agent.Part{Type: pt, Text: it.Content.Text})
	}
	return it
}
