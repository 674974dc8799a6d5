package grpcauthz_test

import (
	"testing"

	"google.golang.org/grpc/codes"

	"github.com/cognito-extauthz/cognito-extauthz/internal/issuer"
	"github.com/cognito-extauthz/cognito-extauthz/internal/testenv"
)

// TestDryRun: through real gRPC, a dry-run route lets a would-be denial
// through, marked for the upstream and in the metadata, counted as
// dry_run with its real reason, logged; a real allow is ordinary; an
// enforcing route still denies.
func TestDryRun(t *testing.T) {
	f := newFixture(t, fixtureOptions{policy: testenv.DryRunPolicy})
	member := f.env.ID(t, issuer.TokenOptions{Subject: "sub-a", Groups: []string{"auditors"}})
	outsider := f.env.ID(t, issuer.TokenOptions{Subject: "sub-b", Groups: []string{"finance"}})
	forged := func(tok string) map[string]string {
		h := map[string]string{"x-user-email": "boss@example.com", "x-user-sub": "someone-else", "x-extauthz-dry-run": "forged"}
		if tok != "" {
			h["authorization"] = "Bearer " + tok
		}
		return h
	}

	tests := []struct {
		name       string
		path, tok  string
		wantHeader map[string]string // set on the upstream request
		wantRemove []string
		reason     string // metadata reason / dry-run header, "" for none
	}{
		{"would-be group_missing", "/reports", outsider,
			map[string]string{"x-user-sub": "sub-b", "x-extauthz-dry-run": "group_missing"}, []string{"x-user-email"}, "group_missing"},
		{"would-be token_missing", "/reports", "",
			map[string]string{"x-extauthz-dry-run": "token_missing"}, []string{"x-user-email", "x-user-sub"}, "token_missing"},
		{"real allow is ordinary", "/reports", member,
			map[string]string{"x-user-sub": "sub-a"}, []string{"x-user-email", "x-extauthz-dry-run"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := f.check(t, call{path: tt.path, headers: forged(tt.tok)}.request())
			ok := wantAllowed(t, resp)
			got := headerOptions(t, ok.GetHeaders())
			if len(got) != len(tt.wantHeader) {
				t.Errorf("headers set %v, want %v", got, tt.wantHeader)
			}
			for k, v := range tt.wantHeader {
				if got[k] != v {
					t.Errorf("header %s = %q, want %q", k, got[k], v)
				}
			}
			removed := map[string]bool{}
			for _, h := range ok.GetHeadersToRemove() {
				removed[h] = true
			}
			for _, h := range tt.wantRemove {
				if !removed[h] {
					t.Errorf("%s not removed (removed %v): a forged header would reach the upstream", h, ok.GetHeadersToRemove())
				}
			}
			md := resp.GetDynamicMetadata().AsMap()
			if tt.reason != "" {
				if md["dry_run"] != true || md["reason"] != tt.reason {
					t.Errorf("metadata %v, want dry_run true and reason %s", md, tt.reason)
				}
			} else if _, has := md["dry_run"]; has {
				t.Errorf("a real allow carries dry_run metadata: %v", md)
			}
		})
	}

	resp := f.check(t, call{path: "/ledger", headers: bearer(outsider)}.request())
	if codes.Code(resp.GetStatus().GetCode()) != codes.PermissionDenied {
		t.Errorf("the enforcing route let a non-member through: %v", resp.GetStatus())
	}

	got := nonZero(t, f.reg, "extauthz_checks_total")
	for key, n := range map[string]float64{
		`decision="dry_run",edge="grpc",reason="group_missing",route="reports"`: 1,
		`decision="dry_run",edge="grpc",reason="token_missing",route="reports"`: 1,
		`decision="allow",edge="grpc",reason="allowed",route="reports"`:         1,
		`decision="deny",edge="grpc",reason="group_missing",route="ledger"`:     1,
	} {
		if got[key] != n {
			t.Errorf("extauthz_checks_total{%s} = %v, want %v (all: %v)", key, got[key], n, got)
		}
	}
	var dry int
	for _, l := range f.logs.Lines(t) {
		if l["logger"] == "decision" && l["decision"] == "dry_run" {
			dry++
			if l["msg"] != "check dry run" || l["route"] != "reports" {
				t.Errorf("dry-run log line %v", l)
			}
		}
	}
	if dry != 2 {
		t.Errorf("%d dry-run log lines, want 2", dry)
	}
}
