package server

import (
	"context"
	"fmt"
	"time"

	"go.uber.org/zap"

	"github.com/cognito-extauthz/cognito-extauthz/internal/revocation"
	"github.com/cognito-extauthz/cognito-extauthz/pkg/policy"
)

// newRevocations builds the deny list a policy names, not started; nil
// when it names none. An error (a bad line of the file, with file:line)
// keeps the policy from being served.
func (s *Server) newRevocations(snap *policy.Snapshot) (*revocation.List, error) {
	cfg := revocation.PolicyConfig(snap.Revocation())
	if cfg == nil {
		return nil, nil
	}
	// The file is watched like the policy: the same poll fallback and
	// settle time.
	cfg.FilePoll, cfg.FileSettle = s.cfg.ReloadInterval, s.cfg.ReloadSettle
	cfg.Logger = s.log.Named("revocation")
	cfg.Registerer = s.registry
	l, err := revocation.New(*cfg)
	if err != nil {
		return nil, fmt.Errorf("revocation list: %w", err)
	}
	return l, nil
}

// startRevocations starts the list in force under ctx, the server's
// background context.
func (s *Server) startRevocations(ctx context.Context) {
	if err := s.authz.Revocations().Start(ctx); err != nil {
		s.log.Error("revocation list did not start", zap.Error(err))
	}
}

// sameRevocation reports whether two policies name the same deny list, so a
// reload keeps the list (and its Redis connection) it has.
func sameRevocation(a, b *policy.Revocation) bool {
	if a == nil || b == nil {
		return a == b
	}
	return *a == *b
}

// nextRevocations prepares the deny list of a policy about to be applied:
// the list in force when the policy names the same one; else a new list,
// started and synced once within wait. A list that cannot be had keeps the
// policy in force (the caller rejects the reload): applying a policy whose
// revocation checks would all fail would turn a configuration change into
// an outage, or, worse, drop revocations silently.
func (s *Server) nextRevocations(ctx context.Context, cur, next *policy.Snapshot, wait time.Duration) (*revocation.List, bool, error) {
	if sameRevocation(cur.Revocation(), next.Revocation()) {
		return s.authz.Revocations(), false, nil
	}
	l, err := s.newRevocations(next)
	if err != nil || l == nil {
		return nil, err == nil, err
	}
	if err := l.Start(ctx); err != nil {
		_ = l.Close()
		return nil, false, fmt.Errorf("revocation list: %w", err)
	}
	wctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	if err := l.Wait(wctx); err != nil {
		_ = l.Close()
		return nil, false, fmt.Errorf("revocation list of the new policy: %w", err)
	}
	return l, true, nil
}
