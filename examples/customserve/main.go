// Command customserve is what you write to serve your own agent: agentrt's
// serve command with one more agent compiled in. The blank import runs the
// agent package's init, which registers it; cli.Main is serve itself, with
// every flag, AGENTRT_* variable and subcommand.
//
//	go build -o bin/customserve ./examples/customserve
//	bin/customserve --agent greeter
package main

import (
	"os"

	"github.com/agentrt/agentrt/runtime/cli"

	_ "github.com/agentrt/agentrt/examples/customserve/greeter" // registers "greeter"
)

func main() { os.Exit(cli.Main(os.Args[1:])) }
