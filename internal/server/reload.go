package server

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"time"

	"go.uber.org/zap"

	"github.com/cognito-extauthz/cognito-extauthz/pkg/policy"
)

// DefaultReloadSettle is how long a changed policy file must keep the same
// content before it is applied. A writer that rewrites the file in place
// (truncate, then write) exposes every prefix of the new file for as long as
// it takes; a prefix can be a valid policy that lacks the requirements
// further down. Two seconds covers editors and scripts that pause between
// writes, and keeps a change live within the reload interval plus 2 s.
const DefaultReloadSettle = 2 * time.Second

// Reload loads the policy file again and, once its content has settled and
// it is valid, swaps it in atomically. Any error keeps the policy in force.
// Checks never see a half-applied policy: each reads one snapshot pointer
// once.
func (s *Server) Reload() { s.reload(context.Background()) }

func (s *Server) reload(ctx context.Context) {
	if s.cfg.PolicyPath == "" {
		return
	}
	s.reloadMu.Lock()
	defer s.reloadMu.Unlock()
	cur := s.snap.Load()
	data, digest, err := readPolicy(s.cfg.PolicyPath, s.cfg.Policy)
	if err != nil {
		s.reloadFailed(err)
		return
	}
	if digest == cur.Digest() {
		s.reloads.WithLabelValues("unchanged").Inc()
		return
	}
	data, err = s.settle(ctx, data, digest)
	if err != nil || data == nil {
		if err != nil {
			s.reloadFailed(err)
		}
		return
	}
	next, err := policy.Parse(data, s.cfg.PolicyPath, s.cfg.Policy)
	if err != nil {
		s.reloadFailed(err)
		return
	}
	if next.Digest() == cur.Digest() {
		s.reloads.WithLabelValues("unchanged").Inc()
		return
	}
	s.apply(ctx, cur, next)
}

// settle waits until the file has held the same content for the settle
// interval and returns that content. Every change seen meanwhile is counted
// and logged as unsettled and restarts the wait, so a file that keeps
// changing is never applied. It returns nil data when ctx ends first.
func (s *Server) settle(ctx context.Context, data []byte, digest string) ([]byte, error) {
	wait := s.cfg.ReloadSettle
	if wait == 0 {
		wait = DefaultReloadSettle
	}
	if wait < 0 {
		return data, nil
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil, nil
		case <-t.C:
		}
		again, next, err := readPolicy(s.cfg.PolicyPath, s.cfg.Policy)
		if err != nil {
			return nil, err
		}
		if next == digest {
			return again, nil
		}
		s.reloads.WithLabelValues("unsettled").Inc()
		s.log.Warn("policy file still changing; waiting for it to settle, keeping the policy in force",
			zap.String("path", s.cfg.PolicyPath),
			zap.String("policy_digest", s.snap.Load().Digest()),
			zap.String("seen_digest", digest),
			zap.String("now_digest", next),
			zap.Duration("settle", wait))
		data, digest = again, next
		t.Reset(wait)
	}
}

func (s *Server) reloadFailed(err error) {
	s.reloads.WithLabelValues("failure").Inc()
	s.log.Error("policy reload rejected; keeping the policy in force",
		zap.String("path", s.cfg.PolicyPath),
		zap.String("policy_digest", s.snap.Load().Digest()),
		zap.Error(err))
}

// apply fetches the new policy's keys and reads the revocation list it
// names, then makes it the policy in force.
func (s *Server) apply(ctx context.Context, cur, next *policy.Snapshot) {
	wait := s.cfg.JWKS.FetchTimeout
	if wait <= 0 {
		wait = 5 * time.Second
	}
	// A new revocation list first: one that cannot be had rejects the
	// reload, before anything else changes.
	list, changed, err := s.nextRevocations(ctx, cur, next, wait+time.Second)
	if err != nil {
		s.reloadFailed(err)
		return
	}
	// Fetch the new policy's keys before it takes effect, while keeping
	// the old sources for checks still running on the old snapshot.
	newSources := next.KeySources()
	if err := s.keys.Prepare(context.Background(), newSources, cur.KeySources(), wait+time.Second); err != nil {
		// The policy is valid; an unreachable key set is an operational
		// problem confined to the routes that use it (they fail closed).
		s.log.Warn("new policy's jwks not all loaded; applying it anyway", zap.Error(err))
	}
	logWarnings(s.log, next)
	if changed {
		// Checks still running on the old snapshot may see the new list;
		// both are the operator's latest word on revocations.
		old := s.authz.Revocations()
		s.authz.SetRevocations(list)
		if err := old.Close(); err != nil {
			s.log.Warn("previous revocation list close", zap.Error(err))
		}
	}
	s.snap.Store(next)
	s.checks.ForgetRoutes(next.Routes())
	s.keys.Sync(newSources)
	s.reloads.WithLabelValues("success").Inc()
	s.lastLoad.SetToCurrentTime()
	s.log.Info("policy reloaded",
		zap.String("path", s.cfg.PolicyPath),
		zap.String("previous_digest", cur.Digest()),
		zap.String("policy_digest", next.Digest()),
		zap.Int("routes", len(next.Routes())))
}

// readPolicy reads the policy file, refusing one over the size limit of
// opts, and returns its bytes and their SHA-256 in hex, the same digest a
// Snapshot carries.
func readPolicy(path string, opts policy.Options) ([]byte, string, error) {
	data, err := policy.ReadFile(path, opts)
	if err != nil {
		return nil, "", err
	}
	sum := sha256.Sum256(data)
	return data, hex.EncodeToString(sum[:]), nil
}
