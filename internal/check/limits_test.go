package check

import (
	"context"
	"testing"
	"time"

	"github.com/cognito-extauthz/cognito-extauthz/internal/authz"
	"github.com/cognito-extauthz/cognito-extauthz/pkg/reason"
)

// TestLimitsBoundaries: a count or size exactly at a limit passes, one
// over it is request_too_large.
func TestLimitsBoundaries(t *testing.T) {
	l := Limits{MaxHeaders: 3, MaxHeaderBytes: 12}
	for _, tt := range []struct {
		n, size int
		over    bool
	}{{3, 12, false}, {4, 0, true}, {0, 13, true}, {0, 0, false}} {
		d := l.TooMany(tt.n)
		if d == nil {
			d = l.TooBig(tt.size)
		}
		if (d != nil) != tt.over || d != nil && d.Reason != reason.RequestTooLarge {
			t.Errorf("n=%d size=%d: %+v, want over %v", tt.n, tt.size, d, tt.over)
		}
	}
}

// TestLimitsDefaults: a zero or negative limit takes the default; a
// positive one is kept.
func TestLimitsDefaults(t *testing.T) {
	tests := []struct {
		in, want Limits
	}{
		{Limits{}, Limits{DefaultMaxHeaders, DefaultMaxHeaderBytes}},
		{Limits{-1, -1}, Limits{DefaultMaxHeaders, DefaultMaxHeaderBytes}},
		{Limits{1, 1}, Limits{1, 1}},
	}
	for _, tt := range tests {
		if got := tt.in.WithDefaults(); got != tt.want {
			t.Errorf("%+v.WithDefaults() = %+v, want %+v", tt.in, got, tt.want)
		}
	}
}

// TestDeadline: a check carries its arrival plus the timeout as its
// deadline (for a key fetch to arm; no timer here) once receiving and
// decoding took longer than decodeSlack, and is denied when that bound has
// passed; without an arrival or a positive timeout the context is left
// alone.
func TestDeadline(t *testing.T) {
	bg := context.Background()
	arrived := func(ago time.Duration) time.Time { return time.Now().Add(-ago) }
	tests := []struct {
		name      string
		arrival   time.Time
		timeout   time.Duration
		bound     bool // the context carries a check deadline
		deny      bool
		unchanged bool
	}{
		{"no arrival", time.Time{}, time.Hour, false, false, true},
		{"zero timeout", arrived(time.Hour), 0, false, false, true},
		{"negative timeout", arrived(time.Hour), -time.Second, false, false, true},
		{"stamped in the future", arrived(-time.Hour), time.Hour, false, false, true},
		{"decoding took 50ms of an hour", arrived(50 * time.Millisecond), time.Hour, true, false, false},
		{"decoding took two hours of one", arrived(2 * time.Hour), time.Hour, false, true, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, d := Deadline(bg, tt.arrival, tt.timeout)
			if got := d != nil; got != tt.deny {
				t.Fatalf("denial %+v, want one: %v", d, tt.deny)
			}
			if d != nil && d.Reason != reason.DeadlineExceeded {
				t.Errorf("reason %s, want %s", d.Reason, reason.DeadlineExceeded)
			}
			if (ctx == bg) != tt.unchanged {
				t.Errorf("context unchanged = %v, want %v", ctx == bg, tt.unchanged)
			}
			if _, ok := ctx.Deadline(); ok {
				t.Error("the context got a deadline (a timer); only a key fetch may arm one")
			}
			dl, ok := authz.CheckDeadline(ctx)
			if ok != tt.bound {
				t.Fatalf("check deadline set = %v, want %v", ok, tt.bound)
			}
			if tt.bound && !dl.Equal(tt.arrival.Add(tt.timeout)) {
				t.Errorf("check deadline %v, want arrival plus timeout %v", dl, tt.arrival.Add(tt.timeout))
			}
		})
	}
}

// TestEnded: a context that ended before the decision is a denial naming
// how it ended.
func TestEnded(t *testing.T) {
	canceled, cancel := context.WithCancel(context.Background())
	cancel()
	past, cancel2 := context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
	defer cancel2()
	tests := []struct {
		name string
		ctx  context.Context
		want reason.Code
	}{
		{"live", context.Background(), ""},
		{"canceled", canceled, reason.Canceled},
		{"deadline passed", past, reason.DeadlineExceeded},
	}
	for _, tt := range tests {
		var got reason.Code
		if d := Ended(tt.ctx); d != nil {
			got = d.Reason
		}
		if got != tt.want {
			t.Errorf("%s: Ended = %q, want %q", tt.name, got, tt.want)
		}
	}
}
