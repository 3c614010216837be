package devworkspace

import (
	"fmt"
	"strings"
	"unicode"
)

// A small SQL lexer: enough to find (possibly quoted) dotted names, named
// parameter markers and function-call argument lists, so that Databricks
// three-part names can be mapped onto SQLite tables and UC functions
// expanded, while leaving everything else byte-for-byte intact.

type sqlTokKind int

const (
	tkSpace sqlTokKind = iota
	tkComment
	tkString // '…'
	tkQIdent // "…" or `…`
	tkIdent
	tkNumber
	tkParam // :name
	tkPunct
)

type sqlTok struct {
	kind sqlTokKind
	text string
}

// name is the identifier value of an ident or quoted ident token.
func (t sqlTok) name() string {
	if t.kind == tkQIdent {
		q := t.text[:1]
		return strings.ReplaceAll(t.text[1:len(t.text)-1], q+q, q)
	}
	return t.text
}

func (t sqlTok) isIdent() bool { return t.kind == tkIdent || t.kind == tkQIdent }

func (t sqlTok) is(p string) bool {
	return (t.kind == tkPunct || t.kind == tkIdent) && strings.EqualFold(t.text, p)
}

func isIdentStart(r rune) bool { return r == '_' || unicode.IsLetter(r) }
func isIdentPart(r rune) bool {
	return r == '_' || r == '$' || unicode.IsLetter(r) || unicode.IsDigit(r)
}

// lexSQL splits a statement into tokens; concatenating their texts gives the
// input back.
func lexSQL(s string) ([]sqlTok, error) {
	var out []sqlTok
	rs := []rune(s)
	for i := 0; i < len(rs); {
		r := rs[i]
		start := i
		kind := tkPunct
		switch {
		case unicode.IsSpace(r):
			for i < len(rs) && unicode.IsSpace(rs[i]) {
				i++
			}
			kind = tkSpace
		case r == '-' && i+1 < len(rs) && rs[i+1] == '-':
			for i < len(rs) && rs[i] != '\n' {
				i++
			}
			kind = tkComment
		case r == '/' && i+1 < len(rs) && rs[i+1] == '*':
			end := strings.Index(string(rs[i+2:]), "*/")
			if end < 0 {
				return nil, &SQLError{Code: codeBadRequest, Message: "[PARSE_SYNTAX_ERROR] unterminated comment"}
			}
			i += 2 + len([]rune(string(rs[i+2:])[:end])) + 2
			kind = tkComment
		case r == '\'' || r == '"' || r == '`':
			q := r
			i++
			for {
				if i >= len(rs) {
					return nil, &SQLError{Code: codeBadRequest, Message: fmt.Sprintf("[PARSE_SYNTAX_ERROR] unterminated %c", q)}
				}
				if rs[i] == q {
					if i+1 < len(rs) && rs[i+1] == q {
						i += 2
						continue
					}
					i++
					break
				}
				i++
			}
			kind = tkQIdent
			if q == '\'' {
				kind = tkString
			}
		case r == ':' && i+1 < len(rs) && isIdentStart(rs[i+1]) && (i == 0 || rs[i-1] != ':'):
			i++
			for i < len(rs) && isIdentPart(rs[i]) {
				i++
			}
			kind = tkParam
		case r == ':' && i+1 < len(rs) && rs[i+1] == ':':
			i += 2
		case isIdentStart(r):
			for i < len(rs) && isIdentPart(rs[i]) {
				i++
			}
			kind = tkIdent
		case unicode.IsDigit(r):
			for i < len(rs) && (unicode.IsDigit(rs[i]) || rs[i] == '.' || rs[i] == 'e' || rs[i] == 'E') {
				i++
			}
			kind = tkNumber
		default:
			i++
		}
		out = append(out, sqlTok{kind: kind, text: string(rs[start:i])})
	}
	return out, nil
}

// nextSignificant returns the index of the first non-space, non-comment
// token at or after i, or len(toks).
func nextSignificant(toks []sqlTok, i int) int {
	for i < len(toks) && (toks[i].kind == tkSpace || toks[i].kind == tkComment) {
		i++
	}
	return i
}

// prevSignificant returns the significant token before index i, if any.
func prevSignificant(toks []sqlTok, i int) (sqlTok, bool) {
	for i--; i >= 0; i-- {
		if toks[i].kind != tkSpace && toks[i].kind != tkComment {
			return toks[i], true
		}
	}
	return sqlTok{}, false
}

// dottedName reads ident(.ident)* starting at i; it returns the parts and
// the index after the name.
func dottedName(toks []sqlTok, i int) ([]string, int) {
	parts := []string{toks[i].name()}
	j := i + 1
	for j+1 < len(toks) && toks[j].kind == tkPunct && toks[j].text == "." && toks[j+1].isIdent() {
		parts = append(parts, toks[j+1].name())
		j += 2
	}
	return parts, j
}

// callArgs parses "( a, b … )" starting at the '(' token at index open. It
// returns the token slices of the top-level arguments and the index after
// the closing parenthesis.
func callArgs(toks []sqlTok, open int) ([][]sqlTok, int, error) {
	depth := 0
	var args [][]sqlTok
	var cur []sqlTok
	for i := open; i < len(toks); i++ {
		t := toks[i]
		if t.kind == tkPunct {
			switch t.text {
			case "(":
				depth++
				if depth == 1 {
					continue
				}
			case ")":
				depth--
				if depth == 0 {
					if len(args) > 0 || strings.TrimSpace(joinToks(cur)) != "" {
						args = append(args, cur)
					}
					return args, i + 1, nil
				}
			case ",":
				if depth == 1 {
					args = append(args, cur)
					cur = nil
					continue
				}
			}
		}
		cur = append(cur, t)
	}
	return nil, 0, &SQLError{Code: codeBadRequest, Message: "[PARSE_SYNTAX_ERROR] unbalanced parentheses"}
}

func joinToks(toks []sqlTok) string {
	var b strings.Builder
	for _, t := range toks {
		b.WriteString(t.text)
	}
	return b.String()
}

// quoteIdent quotes a SQLite identifier.
func quoteIdent(s string) string { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }
