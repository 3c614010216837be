package cli

import (
	"bytes"
	"errors"
	"flag"
	"os"
	"regexp"
	"strings"
	"testing"
)

// TestFlagTablesMatchHelp keeps `serve -help` and the flag tables of
// README.md and docs/dev-loop.md in agreement: every flag is documented,
// every documented flag exists, and a row naming one flag names its
// environment variable.
func TestFlagTablesMatchHelp(t *testing.T) {
	var help bytes.Buffer
	if _, err := parseFlags([]string{"-help"}, &help); !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("parseFlags(-help) = %v", err)
	}
	usage := map[string]string{} // flag → its usage text
	for _, m := range regexp.MustCompile(`(?m)^  -([a-z0-9-]+)(?: \w+)?\n((?:    .*\n?)+)`).FindAllStringSubmatch(help.String(), -1) {
		usage[m[1]] = m[2]
	}
	envOf := regexp.MustCompile(`\b((?:AGENTRT|DATABRICKS)_[A-Z0-9_]+)\b`)
	rowFlag := regexp.MustCompile("`--([a-z0-9-]+)`")
	for _, doc := range []struct {
		file string
		only string // document only flags with this prefix
	}{{"../../README.md", ""}, {"../../docs/dev-loop.md", "dev"}} {
		b, err := os.ReadFile(doc.file)
		if err != nil {
			t.Fatal(err)
		}
		documented := map[string]bool{}
		for _, row := range strings.Split(string(b), "\n") {
			if !strings.HasPrefix(row, "| `--") {
				continue
			}
			cells := strings.Split(row, "|")
			names := rowFlag.FindAllStringSubmatch(cells[1], -1)
			for _, n := range names {
				documented[n[1]] = true
				u, ok := usage[n[1]]
				if !ok {
					t.Errorf("%s documents --%s, which serve does not have", doc.file, n[1])
					continue
				}
				if len(names) == 1 {
					if env := envOf.FindString(u); env != "" && !strings.Contains(cells[2], env) {
						t.Errorf("%s: the row of --%s does not name %s", doc.file, n[1], env)
					}
				}
			}
		}
		for name := range usage {
			if strings.HasPrefix(name, doc.only) && !documented[name] {
				t.Errorf("%s does not document --%s", doc.file, name)
			}
		}
	}
}
