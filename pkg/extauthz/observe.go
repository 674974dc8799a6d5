package extauthz

import (
	"time"

	"github.com/cognito-extauthz/cognito-extauthz/pkg/authz"
)

// Observe records a decision made by another edge (the HTTP authorization
// mode of pkg/httpauthz) in this server's metrics and decision log, so an
// operator sees one set of counters and one log format whichever protocol
// asked. req may be nil when the request could not be translated.
func (s *Server) Observe(req *authz.Request, d *authz.Decision, start time.Time) {
	s.observe(req, d, start)
}
