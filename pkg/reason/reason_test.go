package reason_test

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
	"testing"

	"github.com/cognito-extauthz/cognito-extauthz/pkg/reason"
	extauthzv1 "github.com/cognito-extauthz/cognito-extauthz/proto/extauthz/v1"
)

var snake = regexp.MustCompile(`^[a-z]+(_[a-z]+)*$`)

// The codes are an external contract: snake_case, unique, and exactly the
// Reason enum of the published proto.
func TestCodesMatchProto(t *testing.T) {
	fromProto := map[string]bool{}
	for num, name := range extauthzv1.Reason_name {
		if num == 0 {
			continue
		}
		fromProto[strings.ToLower(strings.TrimPrefix(name, "REASON_"))] = true
	}
	seen := map[reason.Code]bool{}
	for _, c := range reason.All() {
		if !snake.MatchString(string(c)) {
			t.Errorf("code %q is not snake_case", c)
		}
		if seen[c] {
			t.Errorf("code %q listed twice", c)
		}
		seen[c] = true
		if !fromProto[string(c)] {
			t.Errorf("code %q is missing from proto enum Reason", c)
		}
	}
	for name := range fromProto {
		if !seen[reason.Code(name)] {
			t.Errorf("proto Reason %q has no code in pkg/reason", name)
		}
	}
}

func TestError(t *testing.T) {
	base := errors.New("boom")
	err := fmt.Errorf("outer: %w", reason.Wrap(reason.KidUnknown, `kid "x"`, base))
	if got := reason.Of(err); got != reason.KidUnknown {
		t.Fatalf("Of = %s", got)
	}
	if !errors.Is(err, base) {
		t.Fatal("Wrap lost the cause")
	}
	if got := err.Error(); got != `outer: kid_unknown: kid "x": boom` {
		t.Fatalf("Error() = %q", got)
	}
	if got := reason.Of(base); got != reason.Internal {
		t.Fatalf("Of(plain error) = %s, want internal_error", got)
	}
	if got := reason.New(reason.TokenMissing, "").Error(); got != "token_missing" {
		t.Fatalf("New without detail = %q", got)
	}
}
