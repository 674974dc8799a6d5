package grpcauthz_test

import (
	"maps"
	"testing"

	"github.com/cognito-extauthz/cognito-extauthz/internal/issuer"
)

// TestMetrics: checks are counted by route, decision and reason, and their
// latency is observed by decision.
func TestMetrics(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	id := f.env.ID(t, issuer.TokenOptions{})
	for _, c := range []call{
		{path: "/pets", headers: bearer(id)},
		{path: "/pets", headers: bearer(id)},
		{path: "/health"},
		{path: "/pets"},
		{path: "/pets", headers: bearer(flipSignature(t, id))},
		{path: "/nowhere", headers: bearer(id)},
		{path: "/pets", route: "unknown-route", headers: bearer(id)},
	} {
		f.check(t, c.request())
	}

	want := map[string]float64{
		`decision="allow",edge="grpc",reason="allowed",route="list-pets"`:          2,
		`decision="allow",edge="grpc",reason="authorization_none",route="health"`:  1,
		`decision="deny",edge="grpc",reason="route_not_found",route="none"`:        2,
		`decision="deny",edge="grpc",reason="signature_invalid",route="list-pets"`: 1,
		`decision="deny",edge="grpc",reason="token_missing",route="list-pets"`:     1,
	}
	got := nonZero(t, f.reg, "extauthz_checks_total")
	if !maps.Equal(got, want) {
		t.Errorf("extauthz_checks_total non-zero series:\n got %v\nwant %v", got, want)
	}

	mfs, err := f.reg.Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	counts := map[string]uint64{}
	for _, mf := range mfs {
		if mf.GetName() != "extauthz_check_duration_seconds" {
			continue
		}
		for _, m := range mf.GetMetric() {
			dec, edge := "", ""
			for _, l := range m.GetLabel() {
				switch l.GetName() {
				case "decision":
					dec = l.GetValue()
				case "edge":
					edge = l.GetValue()
				}
			}
			counts[edge+"/"+dec] = m.GetHistogram().GetSampleCount()
			if m.GetHistogram().GetSampleSum() < 0 {
				t.Errorf("negative duration sum")
			}
		}
	}
	if counts["grpc/allow"] != 3 || counts["grpc/deny"] != 4 || counts["http/allow"] != 0 || counts["http/deny"] != 0 {
		t.Errorf("extauthz_check_duration_seconds counts = %v, want grpc allow 3, deny 4, nothing for http", counts)
	}
}
