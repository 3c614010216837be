// Command plugin is an agent built as a Go plugin (go build
// -buildmode=plugin) and loaded by serve --agent ./plugin.so. Like echo it
// needs no workspace: it answers with statistics about the caller's last
// message, streamed one line at a time.
//
// Build it with the same Go toolchain, flags and module versions as serve
// (make plugin does), then run:
//
//	serve --agent ./bin/plugin.so
//
// serve looks up the exported New (and the optional Manifest) below.
package main

import (
	"context"
	"fmt"
	"os"
	"strings"
	"unicode"

	"github.com/agentrt/agentrt/agent"
)

// New is the constructor serve looks up in the plugin. FromStream adds the
// one-piece Predict; the host still streams through PredictStream.
func New() (agent.Agent, error) { return agent.FromStream(&Stats{}), nil }

// Stats reports word, character and line counts of the last user message.
type Stats struct{}

// PredictStream emits one text delta per line of the answer, then the item.
func (s *Stats) PredictStream(ctx context.Context, req *agent.Request, emit agent.Emit) error {
	text := req.LastUserText()
	if strings.TrimSpace(text) == "" {
		return fmt.Errorf("no user message to measure")
	}
	lines := Measure(text)
	id := agent.NewID("msg")
	var full strings.Builder
	for i, l := range lines {
		if i > 0 {
			l = "\n" + l
		}
		full.WriteString(l)
		if err := emit(agent.TextDelta(l, id)); err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
	}
	return emit(agent.ItemDone(agent.TextItem(id, full.String())))
}

// Measure returns the lines of the answer for text.
func Measure(text string) []string {
	words := strings.FieldsFunc(text, func(r rune) bool { return !unicode.IsLetter(r) && !unicode.IsNumber(r) && r != '\'' })
	longest := ""
	for _, w := range words {
		if len([]rune(w)) > len([]rune(longest)) {
			longest = w
		}
	}
	out := []string{
		fmt.Sprintf("words: %d", len(words)),
		fmt.Sprintf("characters: %d", len([]rune(text))),
		fmt.Sprintf("lines: %d", strings.Count(strings.TrimRight(text, "\n"), "\n")+1),
	}
	if longest != "" {
		out = append(out, fmt.Sprintf("longest word: %s", longest))
	}
	return out
}

// main lets go build ./... compile this package; as a program it only says
// how to use it.
func main() {
	fmt.Fprintln(os.Stderr, "this is an agent plugin: build it with go build -buildmode=plugin (make plugin) and run serve --agent ./bin/plugin.so")
	os.Exit(2)
}
