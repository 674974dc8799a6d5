// Package docs_test checks the repository's Markdown as a reader follows
// it: every relative link names a file that exists, every #anchor a heading
// of its target, and no document points at a text users never see.
package docs_test

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"unicode"
)

// documents are the Markdown files a user or a contributor reads, relative
// to the repository root.
func documents(t *testing.T) []string {
	t.Helper()
	docs, err := filepath.Glob("*.md")
	if err != nil {
		t.Fatal(err)
	}
	for i, d := range docs {
		docs[i] = filepath.Join("docs", d)
	}
	docs = append(docs, "README.md", "CONTRIBUTING.md", "BENCHMARKS.md",
		filepath.Join("envoy", "README.md"), filepath.Join("k8s", "README.md"))
	slices.Sort(docs)
	return docs
}

// TestLinks: every relative link and #anchor of every document resolves.
func TestLinks(t *testing.T) {
	root := ".."
	for _, doc := range documents(t) {
		t.Run(doc, func(t *testing.T) {
			b, err := os.ReadFile(filepath.Join(root, doc))
			if err != nil {
				t.Fatal(err)
			}
			for _, p := range brokenLinks(root, doc, string(b)) {
				t.Error(p)
			}
		})
	}
}

// TestNoPrivateReferences: the documents never send a reader to a text
// that is not in the repository, nor to the tracker's numbering.
func TestNoPrivateReferences(t *testing.T) {
	for _, doc := range documents(t) {
		t.Run(doc, func(t *testing.T) {
			b, err := os.ReadFile(filepath.Join("..", doc))
			if err != nil {
				t.Fatal(err)
			}
			for _, p := range privateReferences(string(b)) {
				t.Errorf("%s: %s", doc, p)
			}
		})
	}
}

// privateRE finds references to the design contract (a document users
// never see) and to issue numbers.
var privateRE = regexp.MustCompile(`(?i)contract\.md|\bthe contract\b|\bissues?\s+#?\d+|(?:^|\s)#\d+\b`)

func privateReferences(text string) []string {
	var out []string
	for i, line := range strings.Split(text, "\n") {
		if m := privateRE.FindString(line); m != "" {
			out = append(out, fmt.Sprintf("line %d: %q", i+1, strings.TrimSpace(m)))
		}
	}
	return out
}

// linkRE finds inline links and images: [text](target) and ![alt](target).
// A title ("...") after the target is not used in these documents.
var linkRE = regexp.MustCompile(`\]\(([^)\s]+)\)`)

// brokenLinks returns a description of every relative link of doc (a path
// relative to root, with content text) that does not resolve.
func brokenLinks(root, doc, text string) []string {
	var out []string
	for _, l := range links(text) {
		if strings.Contains(l.target, "://") || strings.HasPrefix(l.target, "mailto:") {
			continue
		}
		path, anchor, _ := strings.Cut(l.target, "#")
		target := doc
		if path != "" {
			target = filepath.Join(filepath.Dir(doc), filepath.FromSlash(path))
		}
		st, err := os.Stat(filepath.Join(root, target))
		if err != nil {
			out = append(out, fmt.Sprintf("line %d: %s: no such file %s", l.line, l.target, target))
			continue
		}
		if anchor == "" {
			continue
		}
		if st.IsDir() || !strings.HasSuffix(target, ".md") {
			out = append(out, fmt.Sprintf("line %d: %s: an anchor into %s, which is not a Markdown file", l.line, l.target, target))
			continue
		}
		b, err := os.ReadFile(filepath.Join(root, target))
		if err != nil {
			out = append(out, fmt.Sprintf("line %d: %s: %v", l.line, l.target, err))
			continue
		}
		if !slices.Contains(anchors(string(b)), anchor) {
			out = append(out, fmt.Sprintf("line %d: %s: %s has no heading #%s", l.line, l.target, target, anchor))
		}
	}
	return out
}

type link struct {
	line   int
	target string
}

// links returns the link targets of text outside fenced code blocks and
// inline code spans, where brackets and parentheses are code, not links.
func links(text string) []link {
	var out []link
	for i, line := range prose(text) {
		if line == "" {
			continue
		}
		for _, m := range linkRE.FindAllStringSubmatch(stripCodeSpans(line), -1) {
			out = append(out, link{line: i + 1, target: m[1]})
		}
	}
	return out
}

// prose returns the lines of text with those inside fenced code blocks
// blanked, so line numbers stay those of the file.
func prose(text string) []string {
	lines := strings.Split(text, "\n")
	fence := ""
	for i, l := range lines {
		trimmed := strings.TrimSpace(l)
		switch {
		case fence == "" && (strings.HasPrefix(trimmed, "```") || strings.HasPrefix(trimmed, "~~~")):
			fence = trimmed[:3]
			lines[i] = ""
		case fence != "":
			if strings.HasPrefix(trimmed, fence) {
				fence = ""
			}
			lines[i] = ""
		}
	}
	return lines
}

// codeSpanRE matches an inline code span of one or two backticks.
var codeSpanRE = regexp.MustCompile("``[^`]+``|`[^`]+`")

func stripCodeSpans(line string) string { return codeSpanRE.ReplaceAllString(line, "``") }

// headingRE matches an ATX heading.
var headingRE = regexp.MustCompile(`^#{1,6}\s+(.*?)\s*#*\s*$`)

// anchors returns the anchors GitHub gives the headings of a Markdown
// document: the heading text lower-cased, with everything but letters,
// digits, spaces, '-' and '_' dropped and each space made '-'; a repeated
// anchor gets -1, -2, ... in order.
func anchors(text string) []string {
	var out []string
	seen := map[string]int{}
	for _, line := range prose(text) {
		m := headingRE.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		a := slug(m[1])
		if n := seen[a]; n > 0 {
			seen[a]++
			a = fmt.Sprintf("%s-%d", a, n)
		} else {
			seen[a] = 1
		}
		out = append(out, a)
	}
	return out
}

func slug(heading string) string {
	// A link in a heading is its text.
	heading = regexp.MustCompile(`\[([^\]]*)\]\([^)]*\)`).ReplaceAllString(heading, "$1")
	var b strings.Builder
	for _, r := range strings.ToLower(heading) {
		switch {
		case unicode.IsLetter(r), unicode.IsDigit(r), r == '-', r == '_':
			b.WriteRune(r)
		case r == ' ':
			b.WriteByte('-')
		}
	}
	return b.String()
}

// TestCheckerFindsBreakage holds the checker itself to what it must catch
// and what it must let pass, on documents written for the purpose.
func TestCheckerFindsBreakage(t *testing.T) {
	root := t.TempDir()
	files := map[string]string{
		"a.md": "# Title\n\n## Same\n\n## Same\n\n## `code` and (punctuation)!\n\n## Trailing-slash reading, 3 ways\n",
		"sub/b.md": strings.Join([]string{
			"[ok](../a.md) [ok](../a.md#title) [ok](../a.md#same-1) [ok](../a.md#code-and-punctuation)",
			"[ok](../a.md#trailing-slash-reading-3-ways) [ok](#local) [ok](https://example.com/x#y) [ok](../sub/)",
			"`[code](nowhere.md)` and",
			"```sh",
			"[fenced](nowhere.md)",
			"```",
			"## Local",
			"[missing file](nowhere.md)",
			"[missing anchor](../a.md#same-2)",
			"[anchor into a directory](../sub/#x)",
			"[missing local](#elsewhere)",
		}, "\n"),
	}
	for name, text := range files {
		p := filepath.Join(root, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got := brokenLinks(root, filepath.Join("sub", "b.md"), files["sub/b.md"])
	want := []string{"nowhere.md", "../a.md#same-2", "../sub/#x", "#elsewhere"}
	if len(got) != len(want) {
		t.Fatalf("broken links:\n%s\nwant one for each of %v", strings.Join(got, "\n"), want)
	}
	for i, w := range want {
		if !strings.Contains(got[i], " "+w+": ") {
			t.Errorf("broken link %d = %q, want one for %s", i, got[i], w)
		}
	}

	for _, tc := range []struct {
		line string
		bad  bool
	}{
		{"see CONTRACT.md section 5", true},
		{"as the contract says", true},
		{"fixed in issue 16", true},
		{"(issues #7 and #9)", true},
		{"see #12", true},
		{"contracts of the API, issue a token, 16 issuers", false},
		{"[link](#anchor-2) and `C#`", false},
	} {
		if got := len(privateReferences(tc.line)) > 0; got != tc.bad {
			t.Errorf("privateReferences(%q) found %v, want %v", tc.line, got, tc.bad)
		}
	}
}
