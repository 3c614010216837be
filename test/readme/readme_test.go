// Package readme runs the shell examples of the repository's README.md as
// written, against `serve --dev --agent assistant` started in-process on a
// free loopback port, and checks what each prints. An example the test has
// no check for fails it, so a new example comes with its check.
package readme

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	_ "github.com/agentrt/agentrt/examples/assistant" // the agent `make dev` serves
	"github.com/agentrt/agentrt/runtime/cli"
)

// example is one command of a ```sh block, with the comment above it.
type example struct {
	comment, cmd string
}

// shellExamples returns the commands of md's ```sh blocks: a command is a
// run of lines joined by trailing backslashes; comment lines above it
// describe it.
func shellExamples(md string) []example {
	var out []example
	in := false
	var comment []string
	var cmd strings.Builder
	for _, line := range strings.Split(md, "\n") {
		switch {
		case !in && strings.TrimSpace(line) == "```sh":
			in, comment = true, nil
			continue
		case in && strings.TrimSpace(line) == "```":
			in = false
			continue
		case !in:
			continue
		}
		t := strings.TrimSpace(line)
		if cmd.Len() == 0 {
			if t == "" {
				comment = nil
				continue
			}
			if strings.HasPrefix(t, "#") {
				comment = append(comment, strings.TrimSpace(strings.TrimPrefix(t, "#")))
				continue
			}
		}
		if c, cont := strings.CutSuffix(line, "\\"); cont {
			cmd.WriteString(c + "\\\n")
			continue
		}
		cmd.WriteString(line)
		out = append(out, example{comment: strings.Join(comment, " "), cmd: cmd.String()})
		cmd.Reset()
		comment = nil
	}
	return out
}

// check inspects one example's output; match selects the example by a
// substring of its command.
type check struct {
	match string
	check func(out string) error
}

// response is the part of a Responses answer the checks read.
type response struct {
	Status string `json:"status"`
	Output []struct {
		Type    string `json:"type"`
		Name    string `json:"name"`
		Args    string `json:"arguments"`
		Output  any    `json:"output"`
		Content []struct {
			Text string `json:"text"`
		} `json:"content"`
	} `json:"output"`
	CustomOutputs struct {
		SkippedTools []struct {
			Tool, Reason string
		} `json:"skipped_tools"`
	} `json:"custom_outputs"`
}

func (r response) text() string {
	var b strings.Builder
	for _, o := range r.Output {
		for _, c := range o.Content {
			b.WriteString(c.Text)
		}
	}
	return b.String()
}

// calls are the agent's tool calls: mcp_call items on /responses (the
// OpenAI dialect), function_call items on /invocations (MLflow's).
func (r response) calls() []string {
	var out []string
	for _, o := range r.Output {
		if o.Type == "function_call" || o.Type == "mcp_call" {
			out = append(out, o.Name+o.Args)
		}
	}
	return out
}

func decode(out string) (response, error) {
	var r response
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		return r, fmt.Errorf("not a JSON response: %v", err)
	}
	if r.Status != "completed" {
		return r, fmt.Errorf("status %q", r.Status)
	}
	return r, nil
}

// answer checks a completed response: its tool calls, the text it must
// contain, and the tools it must have skipped.
func answer(calls []string, text []string, skipped ...string) func(string) error {
	return func(out string) error {
		r, err := decode(out)
		if err != nil {
			return err
		}
		if got := strings.Join(r.calls(), " "); got != strings.Join(calls, " ") {
			return fmt.Errorf("tool calls %q, want %q", got, strings.Join(calls, " "))
		}
		for _, w := range text {
			if !strings.Contains(r.text(), w) {
				return fmt.Errorf("answer lacks %q:\n%s", w, r.text())
			}
		}
		var sk []string
		for _, s := range r.CustomOutputs.SkippedTools {
			if s.Reason == "" {
				return fmt.Errorf("skipped %s without a reason", s.Tool)
			}
			sk = append(sk, s.Tool)
		}
		if strings.Join(sk, ",") != strings.Join(skipped, ",") {
			return fmt.Errorf("skipped %v, want %v", sk, skipped)
		}
		for _, o := range r.Output {
			if s, ok := o.Output.(string); ok && strings.HasPrefix(s, "Error:") {
				return fmt.Errorf("a tool call failed: %s", s)
			}
		}
		return nil
	}
}

var checks = []check{
	{`-H 'X-Dev-User: alice' -d '{"input": "How do I install Kestrel Gateway?"}'`, answer(
		[]string{`main__docs__product_docs_index{"query":"How do I install Kestrel Gateway?"}`},
		[]string{"I found 4 passages", "- **Running Kestrel Gateway in Docker**", "Sources:\n[1] Running Kestrel Gateway in Docker — https://docs.kestrel.example/gateway/install-docker"})},
	{`-H 'X-Dev-User: alice' -d '{"input": "What is the total revenue by region?"}'`, answer(
		[]string{`ask_sales_genie{"question":"What is the total revenue by region?"}`},
		[]string{"Revenue by region, from the Genie space (4 rows):", "- APAC: revenue 2,574,070.93", "[1] Genie space query (Answers: What is the total revenue by region?)"})},
	{`-H 'X-Dev-User: bob'`, answer(nil, []string{"You asked"}, "main__docs__product_docs_index", "ask_sales_genie")},
	{`"stream": true`, func(out string) error {
		var types []string
		sc := bufio.NewScanner(strings.NewReader(out))
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			if line == "" {
				continue
			}
			data, ok := strings.CutPrefix(line, "data: ")
			if !ok {
				return fmt.Errorf("not a data-only SSE line: %q", line)
			}
			if data == "[DONE]" {
				types = append(types, data)
				continue
			}
			var ev struct{ Type string }
			if err := json.Unmarshal([]byte(data), &ev); err != nil {
				return fmt.Errorf("event %q: %v", data, err)
			}
			types = append(types, ev.Type)
		}
		if len(types) < 3 || types[0] != "response.created" || types[len(types)-2] != "response.completed" || types[len(types)-1] != "[DONE]" {
			return fmt.Errorf("events %v", types)
		}
		if !strings.Contains(out, `from the Genie space (4 rows)`) {
			return fmt.Errorf("no readable answer in the stream")
		}
		return nil
	}},
	{`/invocations`, answer(
		[]string{`main__tools__lookup_order{"order_id":"100042"}`},
		[]string{"Order ORD-100042 placed on 2025-02-05", "- Status: shipped", "- Amount: 445.04 USD", "[1] main.tools.lookup_order"})},
	{`-H 'X-Dev-User: carol'`, func(out string) error {
		if err := answer(nil, []string{`You asked: "look up order 100042".`},
			"main__docs__product_docs_index", "ask_sales_genie", "/api/2.0/mcp/functions/main/tools")(out); err != nil {
			return err
		}
		if !strings.Contains(out, "carol@example.com does not have USE_CATALOG on catalog main") {
			return fmt.Errorf("the reasons do not name carol's missing right: %s", out)
		}
		return nil
	}},
	{`-d '{"input": "hi"}'`, func(out string) error {
		var e struct {
			ErrorCode string `json:"error_code"`
			Message   string `json:"message"`
		}
		if err := json.Unmarshal([]byte(out), &e); err != nil || e.ErrorCode != "UNAUTHENTICATED" || !strings.Contains(e.Message, "X-Dev-User: alice") {
			return fmt.Errorf("want the 401 body naming X-Dev-User, got %s", out)
		}
		return nil
	}},
}

// serve starts `serve --dev --agent assistant` and returns its address.
func serve(t *testing.T) string {
	t.Helper()
	pr, pw := io.Pipe()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- cli.Run(ctx, []string{"--agent", "assistant", "--dev", "--addr", "127.0.0.1:0", "--log-format", "json"}, pw)
		pw.Close()
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve returned %v after shutdown", err)
		}
	})
	addrRE := regexp.MustCompile(`"addr":"([^"]+)"`)
	sc := bufio.NewScanner(pr)
	addr := ""
	for addr == "" && sc.Scan() {
		if m := addrRE.FindStringSubmatch(sc.Text()); m != nil && strings.Contains(sc.Text(), "listening") {
			addr = m[1]
		}
	}
	go func() { _, _ = io.Copy(io.Discard, pr) }()
	if addr == "" {
		t.Fatal("serve logged no address")
	}
	return addr
}

func TestREADMEShellExamples(t *testing.T) {
	if _, err := exec.LookPath("curl"); err != nil {
		t.Fatal("the README's examples use curl, which is not installed: apt-get install -y curl (.ci/run does)")
	}
	md, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	all := shellExamples(string(md))
	// The first block is the setup (make dev, make test): the test is that
	// server, and it runs inside make test.
	if len(all) < 2 || all[0].cmd != "make dev    # serve the example assistant on http://127.0.0.1:8080 against the embedded dev workspace" ||
		!strings.HasPrefix(all[1].cmd, "make test") {
		t.Fatalf("README no longer starts with make dev / make test: %+v", all[:min(2, len(all))])
	}
	examples := all[2:]
	if len(examples) < len(checks) {
		t.Fatalf("%d examples, %d checks: an example was removed without its check", len(examples), len(checks))
	}
	addr := serve(t)
	for i, ex := range examples {
		var c *check
		for j := range checks {
			if strings.Contains(ex.cmd, checks[j].match) {
				if c != nil {
					t.Fatalf("example %d matches two checks (%q, %q):\n%s", i, c.match, checks[j].match, ex.cmd)
				}
				c = &checks[j]
			}
		}
		if c == nil {
			t.Errorf("README example has no check in test/readme:\n%s", ex.cmd)
			continue
		}
		if !strings.Contains(ex.cmd, "127.0.0.1:8080") {
			t.Errorf("example does not use make dev's address:\n%s", ex.cmd)
			continue
		}
		t.Run(ex.comment, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, "sh", "-c", strings.ReplaceAll(ex.cmd, "127.0.0.1:8080", addr))
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			if err := cmd.Run(); err != nil {
				t.Fatalf("%s\n%v: %s", ex.cmd, err, stderr.String())
			}
			if err := c.check(stdout.String()); err != nil {
				t.Errorf("%s\n%v", ex.cmd, err)
			}
		})
	}
}
