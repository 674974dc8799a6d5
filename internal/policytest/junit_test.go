package policytest_test

import (
	"bytes"
	"encoding/xml"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/cognito-extauthz/cognito-extauthz/internal/policytest"
)

// The JUnit schema as CI systems read it (Jenkins' junit plugin, GitLab,
// dorny/test-reporter): attributes they require, elements they count.
type jSuites struct {
	XMLName  xml.Name `xml:"testsuites"`
	Name     string   `xml:"name,attr"`
	Tests    *int     `xml:"tests,attr"`
	Failures *int     `xml:"failures,attr"`
	Errors   *int     `xml:"errors,attr"`
	Time     string   `xml:"time,attr"`
	Suites   []jSuite `xml:"testsuite"`
}

type jSuite struct {
	Name       string      `xml:"name,attr"`
	Tests      *int        `xml:"tests,attr"`
	Failures   *int        `xml:"failures,attr"`
	Errors     *int        `xml:"errors,attr"`
	Skipped    *int        `xml:"skipped,attr"`
	Time       string      `xml:"time,attr"`
	Timestamp  string      `xml:"timestamp,attr"`
	Properties []jProperty `xml:"properties>property"`
	Cases      []jCase     `xml:"testcase"`
}

type jProperty struct {
	Name  string `xml:"name,attr"`
	Value string `xml:"value,attr"`
}

type jCase struct {
	Name      string    `xml:"name,attr"`
	Classname string    `xml:"classname,attr"`
	File      string    `xml:"file,attr"`
	Line      int       `xml:"line,attr"`
	Time      string    `xml:"time,attr"`
	Failure   *jProblem `xml:"failure"`
	Error     *jProblem `xml:"error"`
}

type jProblem struct {
	Message string `xml:"message,attr"`
	Type    string `xml:"type,attr"`
	Text    string `xml:",chardata"`
}

func TestJUnit(t *testing.T) {
	cases := []policytest.Case{
		{Name: "passes", File: "c.yaml", Line: 2},
		{Name: `fails <&"quoted">`, File: "c.yaml", Line: 6},
		{Name: "errors", File: "c.yaml", Line: 9},
	}
	results := []policytest.Result{
		{Case: &cases[0], Pass: true, Duration: 1500 * time.Microsecond},
		{Case: &cases[1], Diffs: []string{"reason allowed, want group_missing", "status 200, want 403"}, Duration: time.Millisecond},
		{Case: &cases[2], Err: errors.New("load the policy's keys: boom"), Diffs: []string{"error: boom"}},
	}
	var b bytes.Buffer
	started := time.Date(2026, 3, 2, 9, 41, 17, 0, time.UTC)
	if err := policytest.WriteJUnit(&b, policytest.Report{Suite: "c.yaml", Policy: "policy.yaml", Started: started}, results); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	if !strings.HasPrefix(out, `<?xml version="1.0" encoding="UTF-8"?>`) {
		t.Errorf("no XML declaration:\n%s", out)
	}
	dec := xml.NewDecoder(strings.NewReader(out))
	dec.Strict = true
	var doc jSuites
	if err := dec.Decode(&doc); err != nil {
		t.Fatalf("not well-formed: %v\n%s", err, out)
	}
	if doc.Tests == nil || *doc.Tests != 3 || doc.Failures == nil || *doc.Failures != 1 || doc.Errors == nil || *doc.Errors != 1 {
		t.Errorf("testsuites counts: %+v", doc)
	}
	if len(doc.Suites) != 1 {
		t.Fatalf("%d testsuites", len(doc.Suites))
	}
	s := doc.Suites[0]
	if s.Name != "c.yaml" || *s.Tests != 3 || *s.Failures != 1 || *s.Errors != 1 || s.Skipped == nil || *s.Skipped != 0 ||
		s.Time != "0.003" || s.Timestamp != "2026-03-02T09:41:17" {
		t.Errorf("testsuite: %+v", s)
	}
	if len(s.Properties) != 1 || s.Properties[0] != (jProperty{"policy", "policy.yaml"}) {
		t.Errorf("properties: %+v", s.Properties)
	}
	if len(s.Cases) != 3 {
		t.Fatalf("%d testcases", len(s.Cases))
	}
	for i, c := range s.Cases {
		if c.Name != cases[i].Name || c.Classname != "c.yaml" || c.File != "c.yaml" || c.Line != cases[i].Line || c.Time == "" {
			t.Errorf("testcase %d: %+v", i, c)
		}
	}
	if s.Cases[0].Failure != nil || s.Cases[0].Error != nil {
		t.Error("a passing case has a failure or error")
	}
	if f := s.Cases[1].Failure; f == nil || f.Message != "reason allowed, want group_missing; status 200, want 403" ||
		f.Text != "reason allowed, want group_missing\nstatus 200, want 403" || s.Cases[1].Error != nil {
		t.Errorf("failure: %+v", s.Cases[1].Failure)
	}
	if e := s.Cases[2].Error; e == nil || !strings.Contains(e.Message, "boom") || s.Cases[2].Failure != nil {
		t.Errorf("error: %+v", s.Cases[2].Error)
	}
	if s.Cases[0].Time != "0.002" {
		t.Errorf("time %q: seconds with three decimals", s.Cases[0].Time)
	}
}
