package devworkspace

import (
	"encoding/json"
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"
)

// Answers from tool results: the dev model reads what each tool returned
// (documents from Vector Search, a result table from Genie, an order from a
// UC function, any JSON or text) and writes a short answer: a sentence,
// a few bullets with titles and figures, and numbered sources. Quoted values
// are always whole; long prose is cut only between sentences or words.

const (
	maxBullets   = 3    // items shown per tool result
	maxLeadRunes = 320  // the prose taken from a text result
	maxDocRunes  = 180  // the prose taken from one document
	maxQuote     = 120  // longer values are not quoted
	maxRows      = 5    // table rows shown
	maxFields    = 6    // fields of a generic JSON object shown
	maxTextLines = 4    // lines of a generic text result shown
	answerBudget = 2400 // runes; sections past it are summarised in one line
)

// section is what the dev model says about one tool result.
type section struct {
	lead    string   // one sentence
	bullets []string // "- …" lines, without the dash
	sources []string // citations; bullets refer to them as [n]
	failed  bool
}

// summariseToolResults answers from the trailing tool messages, naming
// each tool from the assistant message that called it.
func summariseToolResults(msgs []chatMessage) string {
	calls := map[string]string{}
	for _, m := range msgs {
		for _, tc := range m.ToolCalls {
			calls[tc.ID] = tc.Function.Name
		}
	}
	start := len(msgs)
	for start > 0 && msgs[start-1].Role == "tool" {
		start--
	}
	q := lastUserText(msgs[:start])
	var secs []section
	cite := 0
	for _, m := range msgs[start:] {
		name := calls[m.ToolCallID]
		if name == "" {
			name = "a tool"
		}
		s := readResult(ucName(name), q, strings.TrimSpace(m.text()))
		// Number the sources across sections.
		for i := range s.bullets {
			s.bullets[i] = renumber(s.bullets[i], cite)
		}
		s.lead = renumber(s.lead, cite)
		cite += len(s.sources)
		secs = append(secs, s)
	}
	var b strings.Builder
	if len(secs) > 1 {
		ok := 0
		for _, s := range secs {
			if !s.failed {
				ok++
			}
		}
		fmt.Fprintf(&b, "I used %d tools%s; %d answered.\n\n", len(secs), forQuestion(q), ok)
	}
	var sources []string
	for i, s := range secs {
		if i > 0 {
			b.WriteString("\n\n")
		}
		if utf8.RuneCountInString(b.String()) > answerBudget {
			fmt.Fprintf(&b, "(%d more tool results not summarised.)", len(secs)-i)
			break
		}
		b.WriteString(s.lead)
		for _, bl := range s.bullets {
			b.WriteString("\n- " + bl)
		}
		sources = append(sources, s.sources...)
	}
	if len(sources) > 0 {
		b.WriteString("\n\nSources:")
		for i, s := range sources {
			fmt.Fprintf(&b, "\n[%d] %s", i+1, s)
		}
	}
	if note := historyNote(msgs[:start]); note != "" {
		b.WriteString("\n\n" + note)
	}
	return b.String()
}

// renumber shifts the [1]… citation markers of one section by off.
var reCite = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`\[(\d+)\]`) })

func renumber(s string, off int) string {
	if off == 0 {
		return s
	}
	return reCite().ReplaceAllStringFunc(s, func(m string) string {
		n, _ := strconv.Atoi(m[1 : len(m)-1])
		return "[" + strconv.Itoa(n+off) + "]"
	})
}

// forQuestion is ` for "q"`, or "" when q is too long to quote whole.
func forQuestion(q string) string {
	if qq, ok := quote(q); ok {
		return " for " + qq
	}
	return ""
}

// quote returns s in double quotes, on one line, if it is short enough to
// quote whole; a value is never quoted cut.
func quote(s string) (string, bool) {
	s = strings.Join(strings.Fields(s), " ")
	if s == "" || utf8.RuneCountInString(s) > maxQuote {
		return "", false
	}
	return `"` + s + `"`, true
}

// historyNote says which earlier turns the model was given: the
// conversation before the current question.
func historyNote(msgs []chatMessage) string {
	cur := -1
	for i := len(msgs) - 1; i >= 0; i-- {
		if msgs[i].Role == "user" {
			cur = i
			break
		}
	}
	if cur <= 0 {
		return ""
	}
	turns := 0
	var asked []string
	for _, m := range msgs[:cur] {
		switch {
		case m.Role == "user":
			turns++
			if q, ok := quote(m.text()); ok {
				asked = append(asked, q)
			} else {
				asked = append(asked, "a long question")
			}
		case m.Role == "assistant" && strings.TrimSpace(m.text()) != "":
			turns++
		}
	}
	if turns == 0 {
		return ""
	}
	note := fmt.Sprintf("(I was given %d earlier %s", turns, plural(turns, "turn", "turns"))
	if len(asked) > 3 {
		note += fmt.Sprintf("; the last 3 of your %d earlier questions: %s", len(asked), strings.Join(asked[len(asked)-3:], ", "))
	} else if len(asked) > 0 {
		note += "; you asked before: " + strings.Join(asked, ", ")
	}
	return note + ".)"
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// readResult reads one tool result.
func readResult(tool, q, out string) section {
	if msg, ok := strings.CutPrefix(out, "Error:"); ok {
		return section{lead: fmt.Sprintf("I could not use %s: %s", tool, sentenceEnd(strings.TrimSpace(msg))), failed: true}
	}
	if out == "" {
		return section{lead: tool + " returned nothing" + forQuestion(q) + "."}
	}
	var v any
	if d := json.NewDecoder(strings.NewReader(out)); d.Decode(&v) == nil && !d.More() {
		if docs, ok := asDocuments(v); ok {
			return documentsSection(tool, q, docs)
		}
		if rows, ok := asRows(v); ok {
			return tableSection(tool, q, rows.cols, rows.rows, "")
		}
		return jsonSection(tool, v)
	}
	if t, ok := parseGenie(out); ok {
		return t
	}
	return textSection(tool, out)
}

// ---- documents (Vector Search) ----

type document struct{ title, text, uri string }

// asDocuments recognises retrieval results: a list of objects with a text
// (page_content, body, text, content, chunk) and optionally a title and a
// URL, flat or under "metadata".
func asDocuments(v any) ([]document, bool) {
	list, ok := v.([]any)
	if !ok || len(list) == 0 {
		return nil, false
	}
	var docs []document
	for _, it := range list {
		obj, ok := it.(map[string]any)
		if !ok {
			return nil, false
		}
		meta, _ := obj["metadata"].(map[string]any)
		get := func(keys ...string) string {
			for _, k := range keys {
				for _, m := range []map[string]any{obj, meta} {
					if s, ok := m[k].(string); ok && strings.TrimSpace(s) != "" {
						return strings.TrimSpace(s)
					}
				}
			}
			return ""
		}
		d := document{
			text:  get("page_content", "body", "text", "content", "chunk", "chunk_text"),
			title: get("title", "name", "heading"),
			uri:   get("doc_uri", "url", "uri", "source", "link"),
		}
		if d.text == "" {
			return nil, false
		}
		docs = append(docs, d)
	}
	return docs, true
}

func documentsSection(tool, q string, docs []document) section {
	s := section{lead: fmt.Sprintf("I found %d %s in %s%s:", len(docs), plural(len(docs), "passage", "passages"), tool, forQuestion(q))}
	for i, d := range docs {
		if i == maxBullets {
			s.bullets = append(s.bullets, fmt.Sprintf("…and %d more.", len(docs)-maxBullets))
			break
		}
		title := d.title
		if title == "" {
			title = fmt.Sprintf("Passage %d", i+1)
		}
		s.bullets = append(s.bullets, fmt.Sprintf("**%s**: %s [%d]", title, clipProse(d.text, maxDocRunes), i+1))
		src := title
		if d.uri != "" {
			src += " — " + d.uri
		}
		s.sources = append(s.sources, src)
	}
	return s
}

// ---- tables (Genie, table functions, SQL) ----

type table struct {
	cols []string
	rows [][]string
}

// asRows recognises a list of flat objects (columns in the first object's
// order as written by encoding/json: sorted) as a table.
func asRows(v any) (table, bool) {
	list, ok := v.([]any)
	if !ok || len(list) == 0 {
		return table{}, false
	}
	first, ok := list[0].(map[string]any)
	if !ok {
		return table{}, false
	}
	var t table
	for k := range first {
		t.cols = append(t.cols, k)
	}
	sort.Strings(t.cols)
	for _, it := range list {
		obj, ok := it.(map[string]any)
		if !ok {
			return table{}, false
		}
		row := make([]string, len(t.cols))
		for i, c := range t.cols {
			row[i] = scalarText(obj[c])
		}
		t.rows = append(t.rows, row)
	}
	return t, true
}

// tableSection lists the first rows as "label: col value, col value",
// labelled by the first text column.
func tableSection(tool, q string, cols []string, rows [][]string, source string) section {
	s := section{lead: fmt.Sprintf("%s returned %d %s%s:", tool, len(rows), plural(len(rows), "row", "rows"), forQuestion(q))}
	if len(rows) == 0 {
		s.lead = fmt.Sprintf("%s found no rows%s.", tool, forQuestion(q))
	}
	label := labelColumn(cols, rows)
	for r, row := range rows {
		if r == maxRows {
			s.bullets = append(s.bullets, fmt.Sprintf("…and %d more rows.", len(rows)-maxRows))
			break
		}
		var parts []string
		for i, c := range cols {
			if i == label || i >= len(row) {
				continue
			}
			parts = append(parts, c+" "+figure(row[i]))
		}
		line := strings.Join(parts, ", ")
		if label >= 0 && label < len(row) {
			line = row[label] + ": " + line
		}
		if source != "" {
			line += " [1]"
		}
		s.bullets = append(s.bullets, line)
	}
	if source != "" {
		s.sources = append(s.sources, source)
	}
	return s
}

// labelColumn picks the column that names a row: a name-like column, else
// the first one that is not a number.
func labelColumn(cols []string, rows [][]string) int {
	if len(rows) == 0 {
		return -1
	}
	for _, want := range []string{"name", "product", "title", "label", "customer", "region", "segment", "category"} {
		for i, c := range cols {
			if strings.EqualFold(c, want) && i < len(rows[0]) && !isFigure(rows[0][i]) {
				return i
			}
		}
	}
	for i := range cols {
		if i < len(rows[0]) && !isFigure(rows[0][i]) {
			return i
		}
	}
	return -1
}

// parseGenie reads the Markdown of a Genie answer (tools/genie): an
// optional text, a description, the SQL, a result table and the
// conversation id.
func parseGenie(out string) (section, bool) {
	if !strings.Contains(out, "\n## Result\n") && !strings.HasPrefix(out, "## Result\n") {
		return section{}, false
	}
	var text, desc string
	var tableLines []string
	part := "text"
	for _, line := range strings.Split(out, "\n") {
		switch {
		case strings.HasPrefix(line, "## "):
			part = strings.TrimPrefix(line, "## ")
			continue
		case strings.HasPrefix(line, "Genie conversation: "):
			continue
		}
		switch part {
		case "text":
			if text == "" && strings.TrimSpace(line) != "" {
				text = strings.TrimSpace(line)
			}
		case "Description":
			if desc == "" && strings.TrimSpace(line) != "" {
				desc = strings.TrimSpace(line)
			}
		case "Result":
			if strings.HasPrefix(line, "|") {
				tableLines = append(tableLines, line)
			}
		}
	}
	var t table
	for i, line := range tableLines {
		cells := splitRow(line)
		switch {
		case i == 0:
			t.cols = cells
		case i == 1: // the alignment row
		default:
			t.rows = append(t.rows, cells)
		}
	}
	title := "the Genie space"
	if t2, _, ok := strings.Cut(text, ": "); ok && !strings.Contains(t2, "=") && utf8.RuneCountInString(t2) <= 80 {
		title = t2
	}
	// The conversation id is left out: a new question starts a new
	// conversation, and the same question must give the same answer.
	src := "Genie space query"
	if desc != "" {
		src += " (" + strings.TrimSuffix(clipProse(desc, maxQuote), ".") + ")"
	}
	s := tableSection(title, "", t.cols, t.rows, src)
	s.lead = fmt.Sprintf("%s, from the Genie space (%d %s):", title, len(t.rows), plural(len(t.rows), "row", "rows"))
	if title == "the Genie space" {
		s.lead = fmt.Sprintf("The Genie space returned %d %s:", len(t.rows), plural(len(t.rows), "row", "rows"))
	}
	if len(t.rows) == 0 {
		s.lead = "The Genie space found no rows."
	}
	return s, true
}

// splitRow splits a Markdown table row on unescaped pipes.
func splitRow(line string) []string {
	line = strings.TrimSpace(line)
	line = strings.TrimPrefix(line, "|")
	line = strings.TrimSuffix(line, "|")
	var cells []string
	var cur strings.Builder
	for i := 0; i < len(line); i++ {
		switch {
		case line[i] == '\\' && i+1 < len(line) && line[i+1] == '|':
			cur.WriteByte('|')
			i++
		case line[i] == '|':
			cells = append(cells, strings.TrimSpace(cur.String()))
			cur.Reset()
		default:
			cur.WriteByte(line[i])
		}
	}
	return append(cells, strings.TrimSpace(cur.String()))
}

// ---- generic JSON and text ----

func jsonSection(tool string, v any) section {
	switch x := v.(type) {
	case map[string]any:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		s := section{lead: fmt.Sprintf("%s returned %d %s:", tool, len(keys), plural(len(keys), "field", "fields"))}
		for i, k := range keys {
			if i == maxFields {
				s.bullets = append(s.bullets, fmt.Sprintf("…and %d more fields.", len(keys)-maxFields))
				break
			}
			s.bullets = append(s.bullets, k+": "+valueText(x[k]))
		}
		return s
	case []any:
		s := section{lead: fmt.Sprintf("%s returned %d %s:", tool, len(x), plural(len(x), "item", "items"))}
		for i, it := range x {
			if i == maxRows {
				s.bullets = append(s.bullets, fmt.Sprintf("…and %d more.", len(x)-maxRows))
				break
			}
			s.bullets = append(s.bullets, valueText(it))
		}
		return s
	}
	return section{lead: fmt.Sprintf("%s returned %s.", tool, valueText(v))}
}

// valueText renders a JSON value for a bullet: scalars whole (long strings
// cut between sentences, never inside quotes), containers by size.
func valueText(v any) string {
	switch x := v.(type) {
	case string:
		if q, ok := quote(x); ok {
			return q
		}
		return clipProse(x, maxLeadRunes)
	case map[string]any:
		return fmt.Sprintf("an object with %d %s", len(x), plural(len(x), "field", "fields"))
	case []any:
		return fmt.Sprintf("a list of %d %s", len(x), plural(len(x), "item", "items"))
	}
	return figure(scalarText(v))
}

var (
	reStatus = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`(?i)\bstatus(?: is|:)? ([A-Za-z_]+)`) })
	reAmount = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`= ([0-9][0-9,]*(?:\.[0-9]+)? ?[A-Z]{3})\b`) })
	reDate   = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`\b(\d{4}-\d{2}-\d{2})\b`) })
)

// textSection quotes a text result's first sentences and pulls out the
// figures a reader looks for (status, amount, date), as a model would.
func textSection(tool, out string) section {
	lines := nonEmptyLines(out)
	first := lines[0]
	s := section{lead: clipProse(first, maxLeadRunes) + " [1]", sources: []string{tool}}
	if m := reStatus().FindStringSubmatch(first); m != nil {
		s.bullets = append(s.bullets, "Status: "+m[1])
	}
	if m := reAmount().FindStringSubmatch(first); m != nil {
		s.bullets = append(s.bullets, "Amount: "+m[1])
	}
	if m := reDate().FindStringSubmatch(first); m != nil {
		s.bullets = append(s.bullets, "Date: "+m[1])
	}
	for i, l := range lines[1:] {
		if i == maxTextLines {
			s.bullets = append(s.bullets, fmt.Sprintf("…and %d more lines.", len(lines)-1-maxTextLines))
			break
		}
		s.bullets = append(s.bullets, clipProse(strings.TrimLeft(l, "-* "), maxLeadRunes))
	}
	return s
}

// ucName shows a managed MCP tool name (catalog__schema__fn) as its Unity
// Catalog name.
func ucName(tool string) string {
	if strings.Count(tool, "__") == 2 {
		return strings.ReplaceAll(tool, "__", ".")
	}
	return tool
}

func nonEmptyLines(s string) []string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			out = append(out, l)
		}
	}
	if len(out) == 0 {
		out = []string{""}
	}
	return out
}

// clipProse keeps whole sentences of s up to about n runes: at least the
// first one, cut between words (outside `code`) only if it alone is longer.
func clipProse(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	sents := sentences(s)
	var b strings.Builder
	for _, t := range sents {
		if b.Len() > 0 && utf8.RuneCountInString(b.String())+1+utf8.RuneCountInString(t) > n {
			break
		}
		if b.Len() > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(t)
	}
	if utf8.RuneCountInString(b.String()) <= n {
		return b.String()
	}
	// One very long sentence: cut at the last space outside a code span.
	out := []rune(b.String())
	cut, code := -1, false
	for i, r := range out {
		if i >= n {
			break
		}
		if r == '`' {
			code = !code
		}
		if r == ' ' && !code {
			cut = i
		}
	}
	if cut <= 0 {
		return b.String() // no safe place to cut
	}
	return strings.TrimRight(string(out[:cut]), ",;:") + "…"
}

// sentences splits prose after ". ", "! " and "? " outside code spans.
func sentences(s string) []string {
	var out []string
	code := false
	start := 0
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '`':
			code = !code
		case '.', '!', '?':
			if !code && i+1 < len(s) && s[i+1] == ' ' {
				out = append(out, s[start:i+1])
				start = i + 2
			}
		}
	}
	if start < len(s) {
		out = append(out, s[start:])
	}
	return out
}

// sentenceEnd ends s with a full stop unless it already ends a sentence.
func sentenceEnd(s string) string {
	if s == "" || strings.HasSuffix(s, ".") || strings.HasSuffix(s, "!") || strings.HasSuffix(s, "?") {
		return s
	}
	return s + "."
}

func scalarText(v any) string {
	switch x := v.(type) {
	case nil:
		return "null"
	case string:
		return x
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64)
	case bool:
		return strconv.FormatBool(x)
	}
	b, _ := json.Marshal(v)
	return string(b)
}

func isFigure(s string) bool {
	_, err := strconv.ParseFloat(strings.ReplaceAll(s, ",", ""), 64)
	return err == nil
}

// figure groups the thousands of a decimal figure (2574070.93 →
// 2,574,070.93); integers, which are often ids or years, stay as they are.
func figure(s string) string {
	intPart, frac, ok := strings.Cut(s, ".")
	if !ok || !reNumber().MatchString(s) {
		return s
	}
	neg := strings.HasPrefix(intPart, "-")
	intPart = strings.TrimPrefix(intPart, "-")
	if len(intPart) < 5 {
		return s
	}
	var b strings.Builder
	for i, r := range intPart {
		if i > 0 && (len(intPart)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(r)
	}
	out := b.String() + "." + frac
	if neg {
		out = "-" + out
	}
	return out
}
