package devworkspace_test

import (
	"fmt"

	"github.com/agentrt/agentrt/internal/devworkspace"
)

// The dev embedding is deterministic and L2-normalised, so the dot product
// of two embeddings is their cosine similarity: related texts score higher.
func ExampleEmbed() {
	cos := func(a, b []float32) (s float32) {
		for i := range a {
			s += a[i] * b[i]
		}
		return s
	}
	q := devworkspace.Embed("how do I back up the vault")
	related := devworkspace.Embed("Backups of the vault are compressed")
	unrelated := devworkspace.Embed("invoice payment methods by card")
	fmt.Println(len(q), cos(q, related) > cos(q, unrelated))
	// Output: 256 true
}

// ProductDocs is the corpus behind main.docs.product_docs and its index.
func ExampleProductDocs() {
	docs := devworkspace.ProductDocs()
	fmt.Println(len(docs), docs[0].Product, "|", docs[0].Title)
	// Output: 200 Kestrel Gateway | What is Kestrel Gateway?
}
