package devworkspace

import "testing"

func BenchmarkTmpNew(b *testing.B) {
	for b.Loop() {
		ws, err := New(Options{})
		if err != nil {
			b.Fatal(err)
		}
		ws.Close()
	}
}
