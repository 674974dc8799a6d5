package policy

import (
	"strings"
	"testing"
)

func TestRouteLints(t *testing.T) {
	const head = "apiVersion: cognito-extauthz/v1\nauthorizers:\n  a:\n    userPools: [{ userPoolId: us-east-1_abc }]\nroutes:\n"
	tests := []struct {
		name   string
		routes string
		want   []string // substrings, one warning each, in order
	}{
		{"host route beside a weaker greedy parent", `
  - { name: pet, match: { path: "/pets/{id}", host: api.example.com }, authorizer: a, groups: [admins] }
  - { name: pets, match: { path: "/pets/{proxy+}" }, authorizer: a }
  - { name: public, match: { path: "/{proxy+}" }, authorization: NONE }`,
			[]string{`p.yaml:7:5: routes[0]: route "pet" is scoped to host api.example.com, but requests for its path with another Host are judged by route "pets"`}},
		{"the weaker greedy parent listed after the catch-all", `
  - { name: pet, match: { path: "/pets/{id}", host: api.example.com }, authorizer: a, groups: [admins] }
  - { name: public, match: { path: "/{proxy+}" }, authorization: NONE }
  - { name: pets, match: { path: "/pets/{proxy+}" }, authorizer: a }`,
			[]string{`p.yaml:7:5: routes[0]: route "pet" is scoped to host api.example.com, but requests for its path with another Host are judged by route "pets"`}},
		{"hostless routes one a prefix of the other, shorter first", `
  - { name: pet, match: { path: "/pets/{proxy+}", host: api.example.com }, authorizer: a, groups: [admins] }
  - { name: one, match: { path: "/pets/{id}" }, authorization: NONE }
  - { name: two, match: { path: "/pets/{id}/{sub}" }, authorization: NONE }`,
			[]string{`judged by route "one"`}},
		{"hostless routes one a prefix of the other, longer first", `
  - { name: pet, match: { path: "/pets/{proxy+}", host: api.example.com }, authorizer: a, groups: [admins] }
  - { name: two, match: { path: "/pets/{id}/{sub}" }, authorization: NONE }
  - { name: one, match: { path: "/pets/{id}" }, authorization: NONE }`,
			[]string{`judged by route "two"`}},
		{"host route with the same rules hostless", `
  - { name: pet, match: { path: "/pets/{id}", host: api.example.com }, authorizer: a }
  - { name: pets, match: { path: "/pets/{id}" }, authorizer: a }`, nil},
		{"methods do not overlap", `
  - { name: pet, match: { path: "/pets/{id}", host: api.example.com, methods: [GET] }, authorizer: a }
  - { name: pets, match: { path: "/pets/{id}", methods: [POST] }, authorization: NONE }`, nil},
		{"templates do not overlap", `
  - { name: pet, match: { path: "/pets/{id}", host: api.example.com }, authorizer: a }
  - { name: cats, match: { path: "/cats/{id}" }, authorization: NONE }
  - { name: deeper, match: { path: "/pets/{id}/{proxy+}" }, authorization: NONE }`, nil},
		{"routes that differ in case", `
  - { name: lower, match: { path: /admin/users }, authorizer: a }
  - { name: upper, match: { path: /Admin/users }, authorization: NONE }`,
			[]string{`p.yaml:8:5: routes[1]: route "upper" (/Admin/users) differs from route "lower" (/admin/users) only in case`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := Parse([]byte(head+tt.routes+"\n"), "p.yaml", Options{})
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			ws := s.Warnings()
			if len(ws) != len(tt.want) {
				t.Fatalf("warnings = %v, want %d", ws, len(tt.want))
			}
			for i, w := range tt.want {
				if got := ws[i].String(); !strings.Contains(got, w) || !strings.HasPrefix(got, "p.yaml:") {
					t.Errorf("warning %d = %q, want it to contain %q with a position", i, got, w)
				}
			}
		})
	}
}
