package policy

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

func FuzzParse(f *testing.F) {
	files, _ := filepath.Glob("testdata/*/*.yaml")
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte("apiVersion: cognito-extauthz/v1\nroutes: [{name: a, authorization: NONE, match: {path: /a}}]\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := Parse(data, "fuzz.yaml", Options{})
		if (s == nil) == (err == nil) {
			t.Fatalf("Parse returned snapshot %v with error %v", s != nil, err)
		}
		if err != nil {
			var ps Problems
			if !errors.As(err, &ps) || len(ps) == 0 {
				t.Fatalf("error %T is not a non-empty Problems", err)
			}
			for _, p := range ps {
				if p.File != "fuzz.yaml" || p.Message == "" {
					t.Fatalf("problem %+v", p)
				}
			}
			return
		}
		if len(s.Digest()) != 64 || len(s.Routes()) == 0 {
			t.Fatalf("digest %q, %d routes", s.Digest(), len(s.Routes()))
		}
		for _, r := range s.Routes() {
			if got, ok := s.RouteByName(r.Name); !ok || got != r {
				t.Fatalf("RouteByName(%q)", r.Name)
			}
			if (r.Authorizer == nil) != r.NoAuth {
				t.Fatalf("route %q: NoAuth %v with authorizer %v", r.Name, r.NoAuth, r.Authorizer)
			}
			if !r.NoAuth && (r.Mode.TokenUse() == "" || r.Authorizer.Token == nil || len(r.Authorizer.Token.Pools) == 0) {
				t.Fatalf("route %q: mode %v, authorizer %+v", r.Name, r.Mode, r.Authorizer)
			}
		}
		if names := s.ClaimHeaderNames(); !slices.IsSorted(names) || len(slices.Compact(slices.Clone(names))) != len(names) {
			t.Fatalf("ClaimHeaderNames %q not sorted and unique", names)
		}
		for _, src := range s.KeySources() {
			if (src.URL == "") == (src.File == "") {
				t.Fatalf("key source %+v has not exactly one of URL and File", src)
			}
		}
	})
}
