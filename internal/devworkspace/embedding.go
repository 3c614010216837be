package devworkspace

import (
	"hash/fnv"
	"math"
	"strings"
	"unicode"
)

// EmbeddingDim is the dimension of the dev embedding served by the
// dev-embeddings endpoint and used by every dev Vector Search index.
const EmbeddingDim = 256

// stopwords are dropped before hashing: they carry no topic and would
// otherwise dominate short queries.
var stopwords = func() map[string]bool {
	m := map[string]bool{}
	for _, w := range strings.Fields(`a an and are as at be by can do does for from has have how i in
		is it its me my of on or our so that the their them then there these this to too us
		was we were what when where which who why will with you your`) {
		m[w] = true
	}
	return m
}()

// tokenize lower-cases s, splits it on anything that is not a letter or
// digit, drops stopwords and applies a light suffix stemmer, so "Backups",
// "backup" and "backing" land on the same term. The result is deterministic
// and allocation-light: one slice plus the strings it holds.
func tokenize(s string) []string {
	var out []string
	start := -1
	flush := func(end int) {
		if start < 0 {
			return
		}
		w := strings.ToLower(s[start:end])
		start = -1
		if stopwords[w] {
			return
		}
		out = append(out, stem(w))
	}
	for i, r := range s {
		if unicode.IsLetter(r) || unicode.IsDigit(r) {
			if start < 0 {
				start = i
			}
			continue
		}
		flush(i)
	}
	flush(len(s))
	return out
}

// stem strips a few common English suffixes. It is deliberately crude: the
// same crude rule on documents and queries is all retrieval needs.
func stem(w string) string {
	if len(w) <= 3 {
		return w
	}
	for _, suf := range []string{"ing", "ies", "ed", "es", "s"} {
		if strings.HasSuffix(w, suf) && len(w)-len(suf) >= 3 {
			base := w[:len(w)-len(suf)]
			if suf == "ies" {
				return base + "y"
			}
			if suf == "s" && strings.HasSuffix(base, "s") { // "class" stays "class"
				return w
			}
			return base
		}
	}
	return w
}

// hashToken maps a term to a bucket and a sign (signed feature hashing
// halves the bias that collisions add to dot products).
func hashToken(t string) (bucket int, sign float32) {
	h := fnv.New64a()
	h.Write([]byte(t))
	v := h.Sum64()
	sign = 1
	if v>>63 == 1 {
		sign = -1
	}
	return int(v % EmbeddingDim), sign
}

// embedInto writes the dev embedding of text into dst (len EmbeddingDim):
// a hashed bag of words over stemmed terms and adjacent-term bigrams
// (weighted lower), sub-linear term frequency, L2-normalised. Text with no
// terms yields the zero vector.
func embedInto(text string, dst []float32) { embedTokens(tokenize(text), dst) }

// embedTokens is embedInto for already tokenized text.
func embedTokens(toks []string, dst []float32) {
	clear(dst)
	add := func(t string, w float32) {
		b, s := hashToken(t)
		dst[b] += s * w
	}
	for i, t := range toks {
		add(t, 1)
		if i > 0 {
			add(toks[i-1]+"_"+t, 0.5)
		}
	}
	// Sub-linear damping of repeated terms: sign-preserving square root.
	var norm float64
	for i, v := range dst {
		if v != 0 {
			d := float32(math.Sqrt(math.Abs(float64(v))))
			if v < 0 {
				d = -d
			}
			dst[i] = d
			norm += float64(d) * float64(d)
		}
	}
	if norm == 0 {
		return
	}
	inv := float32(1 / math.Sqrt(norm))
	for i := range dst {
		dst[i] *= inv
	}
}

// Embed returns the deterministic dev embedding of text: the same vector the
// dev-embeddings serving endpoint returns and the dev Vector Search indexes
// store. It stands in for a real embedding model so retrieval works offline.
func Embed(text string) []float32 {
	v := make([]float32, EmbeddingDim)
	embedInto(text, v)
	return v
}

// dot is the inner product of two equal-length vectors; for L2-normalised
// vectors it is their cosine similarity.
func dot(a, b []float32) float32 {
	b = b[:len(a)]
	var s0, s1, s2, s3 float32
	i := 0
	for ; i+4 <= len(a); i += 4 {
		s0 += a[i] * b[i]
		s1 += a[i+1] * b[i+1]
		s2 += a[i+2] * b[i+2]
		s3 += a[i+3] * b[i+3]
	}
	for ; i < len(a); i++ {
		s0 += a[i] * b[i]
	}
	return s0 + s1 + s2 + s3
}
