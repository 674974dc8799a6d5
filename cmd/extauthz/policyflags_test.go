package main

import (
	"strings"
	"testing"
)

// TestMaxPolicyBytes: every command that loads a policy honours
// --max-policy-bytes (and EXTAUTHZ_MAX_POLICY_BYTES): a policy one byte
// over it is refused with an error that names the flag, one at it loads,
// and a limit too small to hold any policy is a usage error.
func TestMaxPolicyBytes(t *testing.T) {
	padded := validPolicy + "#" + strings.Repeat("x", 2000-len(validPolicy)-2) + "\n"
	if len(padded) != 2000 {
		t.Fatalf("padded policy has %d bytes", len(padded))
	}
	path := writeFile(t, "policy.yaml", padded)
	local := []string{"--grpc-addr", "127.0.0.1:0", "--admin-addr", "127.0.0.1:0"}
	tests := []struct {
		name string
		args []string
		env  string // EXTAUTHZ_MAX_POLICY_BYTES, when set
		code int
		out  string // in stdout+stderr
	}{
		{"validate over", []string{"validate", "--config", path, "--max-policy-bytes", "1999"}, "", exitRuntime, "larger than the limit of 1999 bytes (extauthz --max-policy-bytes"},
		{"validate over by env", []string{"validate", "--config", path}, "1999", exitRuntime, "--max-policy-bytes, env EXTAUTHZ_MAX_POLICY_BYTES"},
		{"validate at the limit", []string{"validate", "--config", path, "--max-policy-bytes", "2000"}, "", exitOK, "ok: 2 routes"},
		{"validate flag beats env", []string{"validate", "--config", path, "--max-policy-bytes", "2000"}, "1999", exitOK, "ok: 2 routes"},
		{"validate too small a limit", []string{"validate", "--config", path, "--max-policy-bytes", "1023"}, "", exitUsage, "--max-policy-bytes must be at least 1024"},
		{"explain over", []string{"explain", "--config", path, "--path", "/pets", "--max-policy-bytes", "1999"}, "", exitUsage, "(extauthz --max-policy-bytes"},
		{"explain too small a limit", []string{"explain", "--config", path, "--path", "/pets"}, "0", exitUsage, "--max-policy-bytes must be at least 1024"},
		{"serve over", append([]string{"serve", "--config", path, "--max-policy-bytes", "1999"}, local...), "", exitRuntime, "(extauthz --max-policy-bytes"},
		{"serve too small a limit", append([]string{"serve", "--config", path, "--max-policy-bytes", "-1"}, local...), "", exitUsage, "--max-policy-bytes must be at least 1024"},
		{"dev's embedded policy over", append([]string{"dev", "--http-authz-addr", "", "--max-policy-bytes", "1024"}, local...), "", exitRuntime, "(extauthz --max-policy-bytes"},
		{"dev too small a limit", append([]string{"dev", "--max-policy-bytes", "5"}, local...), "", exitUsage, "--max-policy-bytes must be at least 1024"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.env != "" {
				t.Setenv("EXTAUTHZ_MAX_POLICY_BYTES", tt.env)
			}
			code, out, errs := runCLI(t, tt.args...)
			if code != tt.code || !strings.Contains(out+errs, tt.out) {
				t.Fatalf("exit %d, want %d with %q\nstdout: %s\nstderr: %s", code, tt.code, tt.out, out, errs)
			}
		})
	}
}
