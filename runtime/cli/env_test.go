package cli

import (
	"bytes"
	"errors"
	"flag"
	"reflect"
	"regexp"
	"strings"
	"testing"

	"github.com/agentrt/agentrt/internal/telemetry"
)

// TestEveryFlagHasAnEnvironmentVariable is the 12-factor check: for every
// flag serve has, setting the variable its usage names must configure the
// same thing as passing the flag.
func TestEveryFlagHasAnEnvironmentVariable(t *testing.T) {
	var help bytes.Buffer
	if _, err := parseFlags([]string{"-help"}, &help); !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("parseFlags(-help) = %v", err)
	}
	// PrintDefaults writes "  -name type" then the usage on the next line.
	flagLine := regexp.MustCompile(`(?m)^  -([a-z0-9-]+)(?: (\w+))?\n((?:    .*\n?)+)`)
	envName := regexp.MustCompile(`\(([A-Z][A-Z0-9_]+)[);]`)
	// Variables read by another package than the flag's.
	readElsewhere := map[string]string{"trace-payloads": telemetry.EnvTracePayloads}
	// Flags whose values are checked while parsing, or whose default is
	// the test's value (a boolean that defaults to true).
	validValue := map[string]string{"cors-origins": "https://app.example.com", "store": "memory", "store-migrate": "false"}

	flags := flagLine.FindAllStringSubmatch(help.String(), -1)
	if len(flags) < 10 {
		t.Fatalf("found only %d flags in the usage:\n%s", len(flags), help.String())
	}
	for _, f := range flags {
		name, typ, usage := f[1], f[2], f[3]
		t.Run(name, func(t *testing.T) {
			if env, ok := readElsewhere[name]; ok {
				if !strings.Contains(usage, env) {
					t.Errorf("usage of -%s does not name %s", name, env)
				}
				return
			}
			m := envName.FindStringSubmatch(usage)
			if m == nil {
				t.Fatalf("usage of -%s names no environment variable: %q", name, usage)
			}
			env := m[1]
			value := map[string]string{"": "true", "string": "sentinel", "int": "7", "duration": "7s"}[typ]
			if v, ok := validValue[name]; ok {
				value = v
			}
			if value == "" {
				t.Fatalf("no test value for type %q", typ)
			}
			t.Setenv(env, "")
			def, err := parseFlags(nil, &bytes.Buffer{})
			if err != nil {
				t.Fatal(err)
			}
			byFlag, err := parseFlags([]string{"-" + name + "=" + value}, &bytes.Buffer{})
			if err != nil {
				t.Fatal(err)
			}
			t.Setenv(env, value)
			byEnv, err := parseFlags(nil, &bytes.Buffer{})
			if err != nil {
				t.Fatal(err)
			}
			if reflect.DeepEqual(def, byFlag) {
				t.Fatalf("-%s=%s changed nothing", name, value)
			}
			if !reflect.DeepEqual(byEnv, byFlag) {
				t.Errorf("%s=%s does not configure what -%s=%s does:\n env:  %+v\n flag: %+v", env, value, name, value, byEnv, byFlag)
			}
		})
	}
}
