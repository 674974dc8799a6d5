package main

import (
	"bytes"
	"context"
	"flag"
	"io"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/cognito-extauthz/cognito-extauthz/internal/issuer"
	"github.com/cognito-extauthz/cognito-extauthz/internal/server"
	"github.com/cognito-extauthz/cognito-extauthz/internal/testenv"
)

// TestTokenFlags: how --token, --token-file (a file or - for stdin) and
// --header authorization become the request's Authorization header, and
// which combinations are refused.
func TestTokenFlags(t *testing.T) {
	file := func(content string) string { return writeFile(t, "token", content) }
	tests := []struct {
		name  string
		args  []string
		stdin string
		want  string // the Authorization header; "" for none
		err   string // in the error; "" for none
	}{
		{"none", nil, "", "", ""},
		{"--token", []string{"--token", "a.b.c"}, "", "Bearer a.b.c", ""},
		{"file with a trailing newline", []string{"--token-file", file("a.b.c\n")}, "", "Bearer a.b.c", ""},
		{"file with CRLF and spaces", []string{"--token-file", file("  a.b.c \r\n")}, "", "Bearer a.b.c", ""},
		{"stdin", []string{"--token-file", "-"}, "a.b.c\n", "Bearer a.b.c", ""},
		{"stdin is read only for -", []string{"--token-file", file("a.b.c")}, "x.y.z", "Bearer a.b.c", ""},
		{"--header authorization alone", []string{"--header", "Authorization=Bearer x.y.z"}, "", "Bearer x.y.z", ""},
		{"file of exactly the limit", []string{"--token-file", file(strings.Repeat("a", maxTokenFile))}, "", "Bearer " + strings.Repeat("a", maxTokenFile), ""},
		{"missing file", []string{"--token-file", "/does/not/exist"}, "", "", "no such file"},
		{"a directory", []string{"--token-file", os.TempDir()}, "", "", "read token"},
		{"empty file", []string{"--token-file", file("")}, "", "", "empty"},
		{"blank file", []string{"--token-file", file(" \n\t\n")}, "", "", "empty"},
		{"empty stdin", []string{"--token-file", "-"}, "", "", "stdin: empty"},
		{"Bearer in the file", []string{"--token-file", file("Bearer a.b.c\n")}, "", "", "white space inside"},
		{"two tokens", []string{"--token-file", file("a.b.c\nd.e.f\n")}, "", "", "white space inside"},
		{"over the limit", []string{"--token-file", file(strings.Repeat("a", maxTokenFile+1))}, "", "", "more than 1048576 bytes"},
		{"over the limit on stdin", []string{"--token-file", "-"}, strings.Repeat("a", maxTokenFile+1), "", "more than 1048576 bytes"},
		{"--token and --token-file", []string{"--token", "a.b.c", "--token-file", file("d.e.f")}, "", "", "--token and --token-file"},
		{"--token and --header authorization", []string{"--token", "a.b.c", "--header", "authorization=Bearer d.e.f"}, "", "", "--header authorization"},
		{"--token-file and --header Authorization", []string{"--token-file", file("a.b.c"), "--header", "Authorization=Bearer d.e.f"}, "", "", "--header authorization"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fs := flag.NewFlagSet("test", flag.ContinueOnError)
			var rf requestFlags
			rf.register(fs)
			if err := fs.Parse(tt.args); err != nil {
				t.Fatal(err)
			}
			h, err := rf.headerMap(strings.NewReader(tt.stdin))
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("error %v, want one containing %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got, set := h["authorization"]; got != tt.want || set != (tt.want != "") {
				t.Fatalf("authorization %q (set %v), want %q", got, set, tt.want)
			}
		})
	}
}

// TestTokenFileCommands: check and explain take the token from a file, and
// refuse a bad --token-file with exit 2 before asking anything.
func TestTokenFileCommands(t *testing.T) {
	env := testenv.New(t)
	path := writeFile(t, "policy.yaml", env.Expand(testenv.Policy))
	srv, err := server.New(server.Config{Snapshot: env.Policy(t, testenv.Policy), GRPCAddr: "127.0.0.1:0", AdminAddr: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })

	id := env.ID(t, issuer.TokenOptions{})
	good, empty := writeFile(t, "id", id+"\n"), writeFile(t, "empty", "")
	for _, cmd := range [][]string{
		{"check", "--addr", srv.GRPCAddr(), "--timeout", "10s"},
		{"explain", "--config", path},
	} {
		t.Run(cmd[0], func(t *testing.T) {
			code, out, errs := runCLI(t, append(cmd, "--path", "/pets", "--token-file", good)...)
			if code != exitOK || !strings.Contains(out, `"allowed": true`) {
				t.Fatalf("--token-file: exit %d\n%s\n%s", code, out, errs)
			}
			code, out, errs = runCLI(t, append(cmd, "--path", "/pets", "--token-file", empty)...)
			if code != exitUsage || out != "" || !strings.Contains(errs, "extauthz "+cmd[0]+": read token from "+empty+": empty") {
				t.Fatalf("empty --token-file: exit %d, want %d\n%s\n%s", code, exitUsage, out, errs)
			}
		})
	}
}

// TestTokenFileStdin: --token-file - reads the token from the process's
// standard input.
func TestTokenFileStdin(t *testing.T) {
	if testing.Short() {
		t.Skip("process-level test")
	}
	env := testenv.New(t)
	path := writeFile(t, "policy.yaml", env.Expand(testenv.Policy))
	id := env.ID(t, issuer.TokenOptions{})
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, "explain", "--config", path, "--path", "/pets", "--token-file", "-")
	cmd.Env = append(os.Environ(), "EXTAUTHZ_TEST_MAIN=1")
	cmd.Stdin = io.MultiReader(strings.NewReader(id), strings.NewReader("\n"))
	var out, errs bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errs
	if err := cmd.Run(); err != nil || !strings.Contains(out.String(), `"allowed": true`) {
		t.Fatalf("explain --token-file -: %v\n%s\n%s", err, out.String(), errs.String())
	}
}
