// Command holdserve is serve with one more agent, "hold", for
// deploy/container's image test. hold answers like echo, but its stream
// sends a first delta and then waits for the process's SIGTERM before it
// finishes, so the test can stop the container with a stream certainly in
// flight and see that stream drained, not cut.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/agentrt/agentrt/agent"
	"github.com/agentrt/agentrt/examples/echo"
	"github.com/agentrt/agentrt/runtime/cli"
)

func init() {
	agent.Register("hold", func() (agent.Agent, error) { return hold{}, nil })
}

type hold struct{ echo.Agent }

// PredictStream sends "before ", waits for SIGTERM, then sends "after" and
// the complete message.
func (hold) PredictStream(ctx context.Context, req *agent.Request, emit agent.Emit) error {
	term := make(chan os.Signal, 1)
	signal.Notify(term, syscall.SIGTERM) // before the first delta: the test signals after it
	defer signal.Stop(term)
	id := agent.NewID("msg")
	if err := emit(agent.TextDelta("before ", id)); err != nil {
		return err
	}
	select {
	case <-term:
	case <-ctx.Done():
		return ctx.Err()
	}
	if err := emit(agent.TextDelta("after", id)); err != nil {
		return err
	}
	return emit(agent.ItemDone(agent.TextItem(id, "before after")))
}

func main() { os.Exit(cli.Main(os.Args[1:])) }
