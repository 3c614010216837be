package devui_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/input"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
)

// One headless Chromium for the package (Debian's chromium, which .ci/run
// installs); each test opens its own tab. A missing browser fails the
// browser tests: it is a dependency of this package's tests, not an option.
var browser struct {
	once   sync.Once
	ctx    context.Context
	cancel context.CancelFunc
	err    error
}

func openBrowser(t *testing.T) context.Context {
	t.Helper()
	browser.once.Do(func() {
		path, err := exec.LookPath("chromium")
		if err != nil {
			browser.err = fmt.Errorf("headless Chromium is needed: %w (apt-get install -y --no-install-recommends chromium, or run .ci/run)", err)
			return
		}
		opts := append(chromedp.DefaultExecAllocatorOptions[:],
			chromedp.ExecPath(path), chromedp.NoSandbox, chromedp.WindowSize(1440, 900))
		actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
		ctx, cancel := chromedp.NewContext(actx)
		// Start the browser now, so a failure to start is reported once.
		if err := chromedp.Do(ctx, chromedp.Navigate("about:blank")); err != nil {
			cancel()
			cancelAlloc()
			browser.err = fmt.Errorf("starting %s: %w", path, err)
			return
		}
		browser.ctx, browser.cancel = ctx, func() { cancel(); cancelAlloc() }
	})
	if browser.err != nil {
		t.Fatal(browser.err)
	}
	tab, cancel := chromedp.NewContext(browser.ctx)
	t.Cleanup(cancel)
	tab, cancelT := context.WithTimeout(tab, 60*time.Second)
	t.Cleanup(cancelT)
	return tab
}

func closeBrowser() {
	if browser.cancel != nil {
		browser.cancel()
	}
}

// console collects the tab's console errors, uncaught exceptions and
// browser log errors (a failed load, a refused script) from now on.
type console struct {
	mu   sync.Mutex
	msgs []string
}

func watchConsole(ctx context.Context) *console {
	c := &console{}
	msgs := chromedp.Console(ctx)
	go func() {
		for m, err := range msgs {
			if err != nil {
				return
			}
			if m.Type == chromedp.ConsoleError || m.IsException() {
				c.mu.Lock()
				c.msgs = append(c.msgs, fmt.Sprintf("%s %s:%d %s", m.Type, m.URL, m.Line+1, m.Text))
				c.mu.Unlock()
			}
		}
	}()
	return c
}

func (c *console) errors() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.msgs...)
}

// screenshots go to $DEVUI_SCREENSHOTS when set (to refresh
// docs/img/dev-ui.png), else to the test's temporary directory.
func screenshot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	dir := os.Getenv("DEVUI_SCREENSHOTS")
	if dir == "" {
		dir = t.TempDir()
	}
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot %s: %v", name, err)
	}
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s", p)
}

// until polls a JavaScript predicate until it is true, failing with what
// describe (an expression) says about the page otherwise.
func until(t *testing.T, ctx context.Context, what, pred, describe string) {
	t.Helper()
	if _, err := chromedp.Run(ctx, chromedp.Poll[bool](pred, chromedp.WithPollingTimeout(15*time.Second))); err != nil {
		state, _ := chromedp.Run(ctx, chromedp.Evaluate[string](describe))
		t.Fatalf("%s: %v; page: %s", what, err, state)
	}
}

// enter presses Enter as a keyboard does. SendKeys("\n") adds a char
// event after the keydown, which types a new line even when the page
// handled the keydown (chromedp's docs/API.md, example 20).
var enter = chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
	for _, typ := range []input.DispatchKeyEventType{input.DispatchKeyEventTypeRawKeyDown, input.DispatchKeyEventTypeKeyUp} {
		if _, err := cdp.Call(ctx, t, input.DispatchKeyEvent, input.DispatchKeyEventParams{
			Type: typ, Key: "Enter", Code: "Enter", WindowsVirtualKeyCode: 13, NativeVirtualKeyCode: 13,
		}); err != nil {
			return err
		}
	}
	return nil
})

func text(t *testing.T, ctx context.Context, expr string) string {
	t.Helper()
	s, err := chromedp.Run(ctx, chromedp.Evaluate[string](expr))
	if err != nil {
		t.Fatalf("%s: %v", expr, err)
	}
	return s
}

// The scenario of a developer's first minute: pick alice and see what she
// may use, ask a docs question and watch the answer stream in with a tool
// card that says the search ran as alice; switch to bob and see, before and
// after sending, which tools were skipped and why; open the trace; all
// without a console error.
func TestBrowserChat(t *testing.T) {
	ctx := openBrowser(t)
	con := watchConsole(ctx)
	if err := chromedp.Do(ctx, chromedp.Navigate(base+"/"),
		chromedp.WaitVisible(`#identity-list input[value="alice"]`)); err != nil {
		t.Fatal(err)
	}
	const body = `document.body.innerText.slice(0, 3000)`
	until(t, ctx, "alice's tools", `document.querySelector("#access-body").textContent.includes("main__docs__product_docs_index")`, body)

	// Enter sends; the answer streams into the last assistant bubble.
	if err := chromedp.Do(ctx, chromedp.Click(`#identity-list input[value="alice"]`),
		chromedp.SendKeys(`#prompt`, "How do I install Kestrel Gateway?"), enter); err != nil {
		t.Fatal(err)
	}
	until(t, ctx, "alice's answer and tool card",
		`!!document.querySelector('.turn:last-child [data-testid="answer"]:not(.streaming)') && document.querySelector('.turn:last-child [data-testid="answer"]').textContent.includes("Kestrel") && !!document.querySelector('[data-testid="tool-card"]')`, body)
	until(t, ctx, "the tool card's principal",
		`(document.querySelector('[data-testid="tool-card"] [data-testid="principal"]') || {}).textContent === "alice@example.com"`,
		`document.querySelector("#panel-tools").innerText`)
	if card := text(t, ctx, `document.querySelector('[data-testid="tool-card"]').innerText`); !strings.Contains(card, "main__docs__product_docs_index") || !strings.Contains(card, "Kestrel Gateway") || !strings.Contains(card, "duration") {
		t.Errorf("tool card:\n%s", card)
	}
	if v := text(t, ctx, `document.querySelector("#prompt").value`); v != "" {
		t.Errorf("the prompt still holds %q after sending", v)
	}
	screenshot(t, ctx, "1-alice-tool-card.png")

	// bob: the picker shows the skipped tools before anything is sent, and
	// the answer repeats them for the request.
	if err := chromedp.Do(ctx, chromedp.Click(`#identity-list input[value="bob"]`)); err != nil {
		t.Fatal(err)
	}
	until(t, ctx, "bob's skipped tools in the picker",
		`(document.querySelector('#access-body [data-testid="skipped"]') || {}).textContent?.includes("main__docs__product_docs_index") && document.querySelector("#access-body").textContent.includes("does not have")`, body)
	if err := chromedp.Do(ctx, chromedp.SendKeys(`#prompt`, "How do I install Kestrel Gateway?"), enter); err != nil {
		t.Fatal(err)
	}
	until(t, ctx, "bob's answer with skipped tools",
		`document.querySelectorAll(".turn").length === 2 && !!document.querySelector('.turn:last-child [data-testid="answer"]:not(.streaming)') && (document.querySelector('.turn:last-child [data-testid="skipped"]') || {}).textContent?.includes("main__docs__product_docs_index")`, body)
	if s := text(t, ctx, `document.querySelector('.turn:last-child [data-testid="skipped"]').textContent`); !strings.Contains(s, "bob@example.com") || !strings.Contains(s, "ask_sales_genie") {
		t.Errorf("bob's skipped tools: %s", s)
	}
	// The conversation was kept: bob's request carried alice's turn.
	if raw := text(t, ctx, `document.querySelector('[data-testid="raw-request"]').textContent`); !strings.Contains(raw, `"role": "assistant"`) {
		t.Errorf("the second request does not carry the first turn:\n%s", raw)
	}
	if curl := text(t, ctx, `document.querySelector('[data-testid="curl"]').textContent`); !strings.Contains(curl, "X-Dev-User: bob") || !strings.Contains(curl, base+"/v1/responses") {
		t.Errorf("curl:\n%s", curl)
	}

	// The trace, from the keyboard: focus the tabs, arrow right.
	if err := chromedp.Do(ctx, chromedp.Focus(`#tab-tools`), chromedp.KeyEvent(kb.ArrowRight)); err != nil {
		t.Fatal(err)
	}
	until(t, ctx, "the trace timeline",
		`!document.querySelector("#panel-trace").hidden && ["POST /v1/responses", "identity.resolve", "tools.prepare", "predict"].every((n) => document.querySelector('#panel-trace [data-testid="span"][data-name="' + n + '"]'))`,
		`document.querySelector("#panel-trace").innerText`)
	if ev := text(t, ctx, `document.querySelector("#panel-trace").textContent`); !strings.Contains(ev, "tool.skipped") {
		t.Errorf("the trace shows no tool.skipped event:\n%s", ev)
	}
	screenshot(t, ctx, "2-bob-trace.png")

	// Flush: a round trip after the last render, then read the console.
	text(t, ctx, `"flush"`)
	if errs := con.errors(); len(errs) > 0 {
		t.Errorf("console errors:\n%s", strings.Join(errs, "\n"))
	}
}
