// Command serve runs one agentrt agent behind the Responses API
// (POST /responses, /v1/responses, /invocations). Flags fall back to
// AGENTRT_* environment variables; see -help. The command itself is
// runtime/cli; this main only chooses which agents are compiled in.
package main

import (
	"os"

	"github.com/agentrt/agentrt/runtime/cli"

	// Agents shipped with this binary.
	_ "github.com/agentrt/agentrt/examples/assistant"
	_ "github.com/agentrt/agentrt/examples/echo"
)

func main() { os.Exit(cli.Main(os.Args[1:])) }
