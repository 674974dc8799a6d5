package policytest

import (
	"encoding/xml"
	"fmt"
	"io"
	"strings"
	"time"
)

// The JUnit XML report, in the shape CI systems read (Jenkins, GitLab,
// GitHub Actions reporters, Azure Pipelines): testsuites > testsuite >
// testcase, a failure element on each failed case.
type junitSuites struct {
	XMLName  xml.Name     `xml:"testsuites"`
	Name     string       `xml:"name,attr"`
	Tests    int          `xml:"tests,attr"`
	Failures int          `xml:"failures,attr"`
	Errors   int          `xml:"errors,attr"`
	Time     string       `xml:"time,attr"`
	Suites   []junitSuite `xml:"testsuite"`
}

type junitSuite struct {
	Name       string          `xml:"name,attr"`
	Tests      int             `xml:"tests,attr"`
	Failures   int             `xml:"failures,attr"`
	Errors     int             `xml:"errors,attr"`
	Skipped    int             `xml:"skipped,attr"`
	Time       string          `xml:"time,attr"`
	Timestamp  string          `xml:"timestamp,attr"`
	Properties []junitProperty `xml:"properties>property,omitempty"`
	Cases      []junitCase     `xml:"testcase"`
}

type junitProperty struct {
	Name  string `xml:"name,attr"`
	Value string `xml:"value,attr"`
}

type junitCase struct {
	Name      string        `xml:"name,attr"`
	Classname string        `xml:"classname,attr"`
	File      string        `xml:"file,attr,omitempty"`
	Line      int           `xml:"line,attr,omitempty"`
	Time      string        `xml:"time,attr"`
	Failure   *junitProblem `xml:"failure,omitempty"`
	Error     *junitProblem `xml:"error,omitempty"`
}

type junitProblem struct {
	Message string `xml:"message,attr"`
	Type    string `xml:"type,attr"`
	Text    string `xml:",chardata"`
}

// Report names what a JUnit report describes.
type Report struct {
	Suite   string    // the cases file
	Policy  string    // the policy file
	Started time.Time // when the run started
}

// WriteJUnit writes results as a JUnit XML report: one testsuite (the cases
// file) with one testcase per case. A case that did not decide as expected
// is a failure; one that could not be decided at all, an error.
func WriteJUnit(w io.Writer, rep Report, results []Result) error {
	suite := junitSuite{
		Name:      rep.Suite,
		Tests:     len(results),
		Timestamp: rep.Started.UTC().Format("2006-01-02T15:04:05"),
	}
	if rep.Policy != "" {
		suite.Properties = []junitProperty{{Name: "policy", Value: rep.Policy}}
	}
	var total time.Duration
	for _, r := range results {
		total += r.Duration
		c := junitCase{Name: r.Case.Name, Classname: rep.Suite, File: r.Case.File, Line: r.Case.Line, Time: seconds(r.Duration)}
		switch {
		case r.Err != nil:
			suite.Errors++
			c.Error = &junitProblem{Message: r.Err.Error(), Type: "error", Text: r.Err.Error()}
		case !r.Pass:
			suite.Failures++
			msg := strings.Join(r.Diffs, "; ")
			c.Failure = &junitProblem{Message: msg, Type: "mismatch", Text: strings.Join(r.Diffs, "\n")}
		}
		suite.Cases = append(suite.Cases, c)
	}
	suite.Time = seconds(total)
	doc := junitSuites{
		Name: "extauthz test", Tests: suite.Tests, Failures: suite.Failures, Errors: suite.Errors,
		Time: suite.Time, Suites: []junitSuite{suite},
	}
	if _, err := io.WriteString(w, xml.Header); err != nil {
		return err
	}
	enc := xml.NewEncoder(w)
	enc.Indent("", "  ")
	if err := enc.Encode(doc); err != nil {
		return fmt.Errorf("junit report: %w", err)
	}
	_, err := io.WriteString(w, "\n")
	return err
}

func seconds(d time.Duration) string { return fmt.Sprintf("%.3f", d.Seconds()) }
