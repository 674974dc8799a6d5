package envoy_test

import (
	"fmt"
	"os"
	"strings"
	"testing"

	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	"google.golang.org/protobuf/encoding/protojson"
	"sigs.k8s.io/yaml"
)

// readmeSnippetStart is the first line of the README's Envoy snippet.
const readmeSnippetStart = "- name: " + extAuthzFilter

// TestReadmeFilterSnippet holds the ext_authz filter the README shows to
// the one envoy/sidecar.yaml ships: the snippet is a run of the file's own
// lines (re-indented as a whole), and it loads on its own as an Envoy
// HttpFilter that passes every check the shipped configs pass. So it cannot
// drift from a config the tests validate.
func TestReadmeFilterSnippet(t *testing.T) {
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	snippet, err := yamlBlock(string(readme), readmeSnippetStart)
	if err != nil {
		t.Fatal(err)
	}
	sidecar, err := os.ReadFile("sidecar.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if err := excerptOf(snippet, strings.Split(string(sidecar), "\n")); err != nil {
		t.Errorf("README snippet is not an excerpt of envoy/sidecar.yaml: %v", err)
	}

	j, err := yaml.YAMLToJSONStrict([]byte(strings.Join(snippet, "\n")))
	if err != nil {
		t.Fatalf("README snippet: yaml: %v", err)
	}
	hcm := &hcmv3.HttpConnectionManager{}
	if err := protojson.Unmarshal([]byte(`{"http_filters":`+string(j)+`}`), hcm); err != nil {
		t.Fatalf("README snippet: protojson: %v", err)
	}
	if len(hcm.GetHttpFilters()) != 1 {
		t.Fatalf("README snippet holds %d filters, want the ext_authz filter alone", len(hcm.GetHttpFilters()))
	}
	w := &walker{}
	for _, f := range hcm.GetHttpFilters() {
		if err := f.ValidateAll(); err != nil {
			t.Errorf("README snippet: %v", err)
		}
		w.walk(f.ProtoReflect(), "http_filters")
	}
	for _, err := range w.errs {
		t.Errorf("README snippet: %v", err)
	}
	// checkFilters wants the router last, as Envoy does.
	hcm.HttpFilters = append(hcm.HttpFilters, &hcmv3.HttpFilter{Name: routerFilter})
	cluster, err := checkFilters(hcm)
	if err != nil {
		t.Errorf("README snippet: %v", err)
	}
	if cluster != "extauthz" {
		t.Errorf("README snippet calls cluster %q, want extauthz (the cluster both shipped configs define)", cluster)
	}
}

// TestExcerptOf: the comparison accepts a re-indented run of lines and
// nothing else.
func TestExcerptOf(t *testing.T) {
	file := []string{"a:", "  b:", "    - x: 1", "", "      y: 2", "  c: 3"}
	tests := []struct {
		name    string
		snippet []string
		ok      bool
	}{
		{"a run at its own indent", []string{"  b:", "    - x: 1"}, true},
		{"a run re-indented", []string{"- x: 1", "", "  y: 2"}, true},
		{"a changed value", []string{"- x: 2", "", "  y: 2"}, false},
		{"a line left out", []string{"- x: 1", "  y: 2"}, false},
		{"indents that do not agree", []string{"b:", "- x: 1"}, false},
		{"empty", nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := excerptOf(tt.snippet, file); (err == nil) != tt.ok {
				t.Errorf("excerptOf = %v, want ok %v", err, tt.ok)
			}
		})
	}
}

// yamlBlock returns the lines of the first ```yaml block of text whose
// first line is first.
func yamlBlock(text, first string) ([]string, error) {
	for rest := text; ; {
		i := strings.Index(rest, "```yaml\n")
		if i < 0 {
			return nil, fmt.Errorf("no ```yaml block starting with %q", first)
		}
		rest = rest[i+len("```yaml\n"):]
		end := strings.Index(rest, "\n```")
		if end < 0 {
			return nil, fmt.Errorf("unterminated ```yaml block")
		}
		if block := strings.Split(rest[:end], "\n"); block[0] == first {
			return block, nil
		}
		rest = rest[end:]
	}
}

// excerptOf reports whether snippet is a run of consecutive lines of file,
// every non-empty line shifted right by the same indent.
func excerptOf(snippet, file []string) error {
	if len(snippet) == 0 {
		return fmt.Errorf("empty snippet")
	}
	for i, l := range file {
		indent, ok := strings.CutSuffix(l, snippet[0])
		if !ok || strings.Trim(indent, " ") != "" || i+len(snippet) > len(file) {
			continue
		}
		if matches(snippet, file[i:i+len(snippet)], indent) {
			return nil
		}
	}
	return fmt.Errorf("no run of %d lines starting with %q matches", len(snippet), snippet[0])
}

func matches(snippet, run []string, indent string) bool {
	for k, s := range snippet {
		if s == "" {
			if strings.TrimSpace(run[k]) != "" {
				return false
			}
			continue
		}
		if run[k] != indent+s {
			return false
		}
	}
	return true
}
