package main

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/agentrt/agentrt/agent"
)

func TestMeasure(t *testing.T) {
	tests := []struct {
		text string
		want []string
	}{
		{"Hello plugin world", []string{"words: 3", "characters: 18", "lines: 1", "longest word: plugin"}},
		{"it's\ntwo lines\n", []string{"words: 3", "characters: 15", "lines: 2", "longest word: lines"}},
		{"héllo wörld!", []string{"words: 2", "characters: 12", "lines: 1", "longest word: héllo"}},
		{"?!", []string{"words: 0", "characters: 2", "lines: 1"}},
	}
	for _, tt := range tests {
		if got := Measure(tt.text); !slices.Equal(got, tt.want) {
			t.Errorf("Measure(%q) = %q, want %q", tt.text, got, tt.want)
		}
	}
}

func request(t *testing.T, body string) *agent.Request {
	t.Helper()
	req := new(agent.Request)
	err := json.Unmarshal([]byte(body), req)
	if err != nil {
		t.Fatal(err)
	}
	return req
}

func TestNewPredictsAndStreams(t *testing.T) {
	a, err := New()
	if err != nil {
		t.Fatal(err)
	}
	req := request(t, `{"input":[{"role":"user","content":"one two three"}]}`)
	resp, err := a.Predict(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	want := "words: 3\ncharacters: 13\nlines: 1\nlongest word: three"
	if got := resp.OutputText(); got != want {
		t.Errorf("Predict = %q, want %q", got, want)
	}

	var deltas strings.Builder
	var done int
	err = a.(agent.StreamAgent).PredictStream(context.Background(), req, func(ev *agent.StreamEvent) error {
		switch ev.Type {
		case agent.EventOutputTextDelta:
			deltas.WriteString(ev.Delta)
		case agent.EventOutputItemDone:
			done++
		}
		return nil
	})
	if err != nil || deltas.String() != want || done != 1 {
		t.Errorf("PredictStream: deltas %q, %d items done, err %v", deltas.String(), done, err)
	}
}

func TestStreamStopsWhenEmitFails(t *testing.T) {
	a, _ := New()
	gone := errors.New("client went away")
	var calls int
	err := a.(agent.StreamAgent).PredictStream(context.Background(), request(t, `{"input":"a b"}`), func(*agent.StreamEvent) error {
		calls++
		return gone
	})
	if !errors.Is(err, gone) || calls != 1 {
		t.Errorf("PredictStream = %v after %d emits, want the emit error after 1", err, calls)
	}
}

func TestNoUserMessage(t *testing.T) {
	a, _ := New()
	if _, err := a.Predict(context.Background(), request(t, `{"input":[{"role":"user","content":"   "}]}`)); err == nil {
		t.Error("Predict of a blank message succeeded")
	}
}

func BenchmarkMeasure(b *testing.B) {
	text := strings.Repeat("The quick brown fox jumps over the lazy dog.\n", 20)
	b.ReportAllocs()
	for b.Loop() {
		Measure(text)
	}
}
