package server_test

import (
	"context"
	"fmt"
	"os"
	"testing"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/responses"

	"github.com/agentrt/agentrt/agent"
	"github.com/agentrt/agentrt/internal/pgtest"
)

// TestMain gives the store tests a throwaway PostgreSQL (never skipped:
// pgtest says how to install it). Run with serveChildEnv set, the test
// binary is instead a `serve` process (procs_test.go).
func TestMain(m *testing.M) {
	if args, ok := os.LookupEnv(serveChildEnv); ok {
		os.Exit(serveChild(args))
	}
	pgtest.Main(m)
}

// replicaAgent answers with the number of input items it saw, streaming
// "n=<count>" in two deltas; for the input "wait" it blocks between them
// until ctx ends.
type replicaAgent struct{}

func (replicaAgent) PredictStream(ctx context.Context, req *agent.Request, emit agent.Emit) error {
	id := agent.NewID("msg")
	if err := emit(agent.TextDelta("n=", id)); err != nil {
		return err
	}
	if req.LastUserText() == "wait" {
		<-ctx.Done()
		return ctx.Err()
	}
	return emit(agent.TextDelta(fmt.Sprint(len(req.Input)), id))
}

func input(s string) responses.ResponseNewParamsInputUnion {
	return responses.ResponseNewParamsInputUnion{OfString: openai.String(s)}
}
