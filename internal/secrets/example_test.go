package secrets_test

import (
	"fmt"

	"github.com/agentrt/agentrt/internal/secrets"
)

func ExampleRefs() {
	for _, r := range secrets.Refs("Bearer {{secrets/agent/external_api_token}}") {
		fmt.Println(r.Scope, r.Key)
	}
	// Output: agent external_api_token
}
