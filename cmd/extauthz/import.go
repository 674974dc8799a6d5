package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/cognito-extauthz/cognito-extauthz/internal/apigw"
)

// runImport converts an API Gateway export into a policy on stdout. What
// cannot be carried is listed on stderr, one line each with its JSON path
// in the export. Exit 0 everything carried, 1 something not carried (the
// policy is printed all the same, and loads), 2 usage or a file that is not
// an API Gateway export, 3 the file cannot be read.
func runImport(_ context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("import", flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: extauthz import apigateway FILE\n\nFILE is a REST API export (OpenAPI 3 or Swagger 2) or an HTTP API export (OpenAPI 3), JSON or YAML.")
	}
	flags, pos := splitArgs(fs, args)
	if code, ok := parseFlags(fs, flags, stderr); !ok {
		return code
	}
	if len(pos) != 2 || pos[0] != "apigateway" {
		fmt.Fprintln(stderr, "usage: extauthz import apigateway FILE")
		return exitUsage
	}
	path := pos[1]
	data, err := readLimited(path, apigw.MaxExportSize)
	if err != nil {
		fmt.Fprintf(stderr, "extauthz import: %v\n", err)
		return exitRuntime
	}
	res, err := apigw.Import(data, path)
	var notExport *apigw.NotExportError
	switch {
	case errors.As(err, &notExport):
		fmt.Fprintf(stderr, "extauthz import: %s: %v\n", path, err)
		return exitUsage
	case err != nil:
		fmt.Fprintf(stderr, "extauthz import: %s: %v\n", path, err)
		return exitRuntime
	}
	if _, err := stdout.Write(res.Policy); err != nil {
		return exitRuntime
	}
	for _, f := range res.Findings {
		fmt.Fprintln(stderr, f.String())
	}
	if n := len(res.Findings); n > 0 {
		fmt.Fprintf(stderr, "extauthz import: %s: %s not carried; the policy denies the routes that depended on them\n", path, count(n, "thing", "things"))
		return exitFail
	}
	return exitOK
}

// readLimited reads a file of at most limit bytes.
func readLimited(path string, limit int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("%s is larger than %d bytes", path, limit)
	}
	return data, nil
}
