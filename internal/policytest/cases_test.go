package policytest_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/cognito-extauthz/cognito-extauthz/internal/policytest"
)

func TestParseGood(t *testing.T) {
	cases, err := policytest.Load("testdata/good.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if len(cases) != 3 {
		t.Fatalf("%d cases", len(cases))
	}
	c := cases[0]
	if c.Name != "id token lists pets" || c.File != "testdata/good.yaml" || c.Line != 3 ||
		c.Request.Method != "GET" || c.Request.Headers["x-trace"] != "1" || !c.Expect.Allow || c.Expect.Status != 200 {
		t.Errorf("case 0: %+v", c)
	}
	groups, _ := c.Claims["cognito:groups"].([]any)
	if len(groups) != 2 || groups[0] != "admins" || c.Claims["sub"] != "alice-sub" {
		t.Errorf("claims: %#v", c.Claims)
	}
	if cases[1].Request.Method != "GET" || cases[1].Claims == nil {
		t.Errorf("case 1: method %q, claims %v", cases[1].Request.Method, cases[1].Claims)
	}
	if cases[2].Claims != nil || cases[2].Token != "" || cases[2].Expect.Reason != "token_missing" {
		t.Errorf("case 2: %+v", cases[2])
	}
}

// TestParseBad reports every problem of a bad file at its line, at once.
func TestParseBad(t *testing.T) {
	_, err := policytest.Load("testdata/bad.yaml")
	var probs policytest.Problems
	if !errors.As(err, &probs) {
		t.Fatalf("error %v is not Problems", err)
	}
	want := []struct {
		line int
		text string
	}{
		{6, `cases[1].request.colour: unknown field "colour"`},
		{7, `cases[1].expect.allow: must be true or false`},
		{8, `cases[2].name: missing`},
		{8, `cases[2].request.method: "GET /" is not an HTTP method`},
		{8, `cases[2].request.path: must start with /`},
		{10, `cases[2].token: give claims`},
		{11, `cases[2].expect.reason: unknown reason code "group_mising"`},
		{11, `cases[2].expect.status: must be an HTTP status code`},
		{13, `cases[3].request.headers.bad header: "bad header" is not a valid header name`},
		{13, `cases[3].request.headers.ok: must be a string`},
		{14, `cases[3].claims: must be a mapping`},
		{12, `cases[3].expect: every case has an expect`},
		{18, `cases[4].when: unknown field "when"`},
	}
	text := probs.Error()
	for _, w := range want {
		found := false
		for _, p := range probs {
			if p.Line == w.line && strings.Contains(p.String(), w.text) && strings.HasPrefix(p.String(), "testdata/bad.yaml:") {
				found = true
			}
		}
		if !found {
			t.Errorf("no problem at line %d with %q in:\n%s", w.line, w.text, text)
		}
	}
	for i := 1; i < len(probs); i++ {
		if probs[i].Line < probs[i-1].Line {
			t.Errorf("problems are not in file order:\n%s", text)
			break
		}
	}
	if len(probs) != len(want) {
		t.Errorf("%d problems, want %d:\n%s", len(probs), len(want), text)
	}
	// The duplicate name is not reported: the second case has problems of
	// its own and is not read.
}

func TestParseFile(t *testing.T) {
	tests := []struct{ name, doc, want string }{
		{"empty", "", "cases file is empty"},
		{"no cases", "tests: []\n", `unknown field "tests"`},
		{"empty cases", "cases: []\n", "must be a non-empty list"},
		{"not a list", "cases: {a: 1}\n", "must be a non-empty list"},
		{"two documents", "cases: []\n---\ncases: []\n", "more than one YAML document"},
		{"alias", "cases:\n  - &c {name: a, request: {path: /}, expect: {allow: true}}\n  - *c\n", "anchors and aliases"},
		{"syntax", "cases: [\n", "invalid YAML"},
		{"duplicate name", "cases:\n  - {name: a, request: {path: /}, expect: {allow: true}}\n  - {name: a, request: {path: /}, expect: {allow: false}}\n", `duplicate case name "a" (first at line 2)`},
		{"both", "cases:\n  - {name: a, request: {path: /}, claims: {}, token: t, expect: {allow: true}}\n", "not both"},
		{"twice", "cases:\n  - {name: a, name: b, request: {path: /}, expect: {allow: true}}\n", "given twice"},
		{"claim twice", "cases:\n  - {name: a, request: {path: /}, claims: {sub: a, sub: b}, expect: {allow: true}}\n", "given twice"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := policytest.Parse([]byte(tt.doc), "c.yaml")
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want %q", err, tt.want)
			}
		})
	}
}

// FuzzParse: any input parses into cases or into problems, never a panic;
// problems always name the file.
func FuzzParse(f *testing.F) {
	for _, s := range []string{"cases: [{name: a, request: {path: /}, expect: {allow: true}}]", "cases:\n  - name: x\n    claims: {a: [1, {b: null}], c: 1.5, d: 0x10}\n"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		cases, err := policytest.Parse(data, "f.yaml")
		if err != nil {
			var probs policytest.Problems
			if !errors.As(err, &probs) || len(probs) == 0 {
				t.Fatalf("error %v is not Problems", err)
			}
			for _, p := range probs {
				if !strings.HasPrefix(p.String(), "f.yaml") {
					t.Fatalf("problem %q does not name the file", p)
				}
			}
			return
		}
		if len(cases) == 0 {
			t.Fatal("no cases and no error")
		}
	})
}
