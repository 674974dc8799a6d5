package e2e

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cognito-extauthz/cognito-extauthz/internal/wait"
)

// cognitoLocalBin is where `make e2e-deps` (npm ci in this directory) puts
// the emulator.
const cognitoLocalBin = "node_modules/.bin/cognito-local"

// emulator is a running cognito-local.
type emulator struct {
	url  string // http://127.0.0.1:PORT
	proc *proc
}

var emu struct {
	once sync.Once
	e    *emulator
	err  error
}

// cognito returns the shared cognito-local, starting it on first use. It
// skips (fails in CI) when the emulator is not installed.
func cognito(t *testing.T) *emulator {
	t.Helper()
	requireE2E(t)
	if _, err := os.Stat(cognitoLocalBin); err != nil {
		missing(t, "cognito-local", "run `make e2e-deps` (npm ci in e2e/)")
	}
	emu.once.Do(func() { emu.e, emu.err = startEmulator() })
	if emu.err != nil {
		t.Fatalf("cognito-local: %v", emu.err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("cognito-local output (%s):\n%s", emu.e.proc.logPath, emu.e.proc.logTail(8<<10))
		}
	})
	return emu.e
}

func stopEmulator() {
	if emu.e != nil {
		emu.e.proc.stop(10 * time.Second)
	}
}

// startEmulator runs cognito-local on a free loopback port. It keeps its
// data in .cognito under its working directory, so it runs in a fresh
// directory of workDir and starts with no pools. HOST fixes both the bind
// address and the issuer host (TokenConfig.IssuerDomain defaults to
// http://HOST:PORT), so iss is http://127.0.0.1:PORT/<poolId>.
func startEmulator() (*emulator, error) {
	bin, err := filepath.Abs(cognitoLocalBin)
	if err != nil {
		return nil, err
	}
	var lastErr error
	for attempt := 1; attempt <= 3; attempt++ {
		port, err := freePort()
		if err != nil {
			return nil, err
		}
		dir := filepath.Join(workDir, fmt.Sprintf("cognito-local-%d", attempt))
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, err
		}
		env := childEnv("PORT="+strconv.Itoa(port), "HOST=127.0.0.1")
		p, err := startProc("cognito-local", dir, filepath.Join(dir, "cognito-local.log"), env, bin)
		if err != nil {
			return nil, err
		}
		e := &emulator{url: "http://127.0.0.1:" + strconv.Itoa(port), proc: p}
		err = wait.Until(60*time.Second, func() (bool, error) {
			if p.exited() {
				return false, fmt.Errorf("%w: cognito-local exited: %v", wait.ErrGiveUp, p.waitErr)
			}
			resp, err := http.Get(e.url + "/health")
			if err != nil {
				return false, err
			}
			resp.Body.Close()
			return resp.StatusCode == http.StatusOK, fmt.Errorf("GET /health: %s", resp.Status)
		})
		if err == nil {
			return e, nil
		}
		p.stop(5 * time.Second)
		lastErr = fmt.Errorf("not answering on %s: %w\n%s", e.url, err, p.logTail(4<<10))
		if !strings.Contains(p.logs(), "EADDRINUSE") {
			break
		}
	}
	return nil, lastErr
}

// call invokes one operation of the Cognito user pools JSON API.
func (e *emulator) call(ctx context.Context, op string, in, out any) error {
	body, err := json.Marshal(in)
	if err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, e.url+"/", bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	req.Header.Set("X-Amz-Target", "AWSCognitoIdentityProviderService."+op)
	req.Header.Set("Content-Type", "application/x-amz-json-1.1")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		return fmt.Errorf("%s: read response: %w", op, err)
	}
	if resp.StatusCode != http.StatusOK {
		var ae struct {
			Type    string `json:"__type"`
			Message string `json:"message"`
		}
		_ = json.Unmarshal(b, &ae)
		return fmt.Errorf("%s: %s: %s %s", op, resp.Status, ae.Type, ae.Message)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			return fmt.Errorf("%s: decode response: %w", op, err)
		}
	}
	return nil
}

func (e *emulator) createPool(ctx context.Context, name string) (string, error) {
	var out struct{ UserPool struct{ Id string } }
	if err := e.call(ctx, "CreateUserPool", map[string]any{"PoolName": name}, &out); err != nil {
		return "", err
	}
	if out.UserPool.Id == "" {
		return "", errors.New("CreateUserPool: no pool id")
	}
	return out.UserPool.Id, nil
}

// createClient creates an app client that may sign in with a password.
// idTokenSeconds > 0 sets the ID token's lifetime in seconds.
func (e *emulator) createClient(ctx context.Context, pool, name string, idTokenSeconds int) (string, error) {
	in := map[string]any{
		"UserPoolId":        pool,
		"ClientName":        name,
		"ExplicitAuthFlows": []string{"ALLOW_USER_PASSWORD_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"},
	}
	if idTokenSeconds > 0 {
		in["IdTokenValidity"] = idTokenSeconds
		in["TokenValidityUnits"] = map[string]string{"IdToken": "seconds"}
	}
	var out struct{ UserPoolClient struct{ ClientId string } }
	if err := e.call(ctx, "CreateUserPoolClient", in, &out); err != nil {
		return "", err
	}
	if out.UserPoolClient.ClientId == "" {
		return "", errors.New("CreateUserPoolClient: no client id")
	}
	return out.UserPoolClient.ClientId, nil
}

func (e *emulator) createGroup(ctx context.Context, pool, group string) error {
	return e.call(ctx, "CreateGroup", map[string]any{"UserPoolId": pool, "GroupName": group}, nil)
}

// user is a confirmed user of a pool.
type user struct {
	email, password string
	sub, username   string // as cognito-local assigned them
}

// createUser creates a confirmed user with a permanent password, the way an
// administrator does: AdminCreateUser, then AdminSetUserPassword.
func (e *emulator) createUser(ctx context.Context, pool, email string) (user, error) {
	u := user{email: email, password: "Correct-Horse-9-Battery"}
	var out struct {
		User struct {
			Username   string
			Attributes []struct{ Name, Value string }
		}
	}
	err := e.call(ctx, "AdminCreateUser", map[string]any{
		"UserPoolId":    pool,
		"Username":      email,
		"MessageAction": "SUPPRESS",
		"UserAttributes": []map[string]string{
			{"Name": "email", "Value": email},
			{"Name": "email_verified", "Value": "true"},
		},
	}, &out)
	if err != nil {
		return u, err
	}
	u.username = out.User.Username
	for _, a := range out.User.Attributes {
		if a.Name == "sub" {
			u.sub = a.Value
		}
	}
	if u.sub == "" || u.username == "" {
		return u, fmt.Errorf("AdminCreateUser %s: no sub or username in the answer", email)
	}
	err = e.call(ctx, "AdminSetUserPassword", map[string]any{
		"UserPoolId": pool, "Username": email, "Password": u.password, "Permanent": true,
	}, nil)
	return u, err
}

func (e *emulator) addToGroup(ctx context.Context, pool string, u user, group string) error {
	return e.call(ctx, "AdminAddUserToGroup", map[string]any{
		"UserPoolId": pool, "Username": u.email, "GroupName": group,
	}, nil)
}

// tokens are what a sign-in returns.
type tokens struct{ id, access string }

// signIn runs the USER_PASSWORD_AUTH flow, as a client app would.
func (e *emulator) signIn(ctx context.Context, client string, u user) (tokens, error) {
	var out struct {
		AuthenticationResult struct{ IdToken, AccessToken string }
	}
	err := e.call(ctx, "InitiateAuth", map[string]any{
		"ClientId": client,
		"AuthFlow": "USER_PASSWORD_AUTH",
		"AuthParameters": map[string]string{
			"USERNAME": u.email,
			"PASSWORD": u.password,
		},
	}, &out)
	if err != nil {
		return tokens{}, err
	}
	r := out.AuthenticationResult
	if r.IdToken == "" || r.AccessToken == "" {
		return tokens{}, fmt.Errorf("InitiateAuth %s: no tokens in the answer", u.email)
	}
	return tokens{id: r.IdToken, access: r.AccessToken}, nil
}

// fixture is the world every test uses: two pools, their app clients,
// users and groups, and real tokens for them. It is made once per run.
type fixture struct {
	emu *emulator

	pool, issuer, jwksURI string // the pool the policy trusts
	web, short, other     string // app clients: allowed, allowed with 1s ID tokens, not allowed

	alice, bob  user // alice is in groups admins and staff; bob in none
	aliceGroups []string

	aliceWeb, bobWeb, aliceOther tokens
	shortID                      string // alice's ID token that lives one second
	shortExp                     time.Time

	otherPool string
	carolID   string // ID token of a user of otherPool, which no authorizer trusts

	scope string // the scope cognito-local puts in access tokens
}

var world struct {
	once sync.Once
	f    *fixture
	err  error
}

// setup returns the shared fixture, building it on first use.
func setup(t *testing.T) *fixture {
	t.Helper()
	e := cognito(t)
	world.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		world.f, world.err = newFixture(ctx, e)
	})
	if world.err != nil {
		t.Fatalf("set up cognito-local: %v", world.err)
	}
	return world.f
}

func newFixture(ctx context.Context, e *emulator) (*fixture, error) {
	f := &fixture{emu: e, aliceGroups: []string{"admins", "staff"}}
	var err error
	if f.pool, err = e.createPool(ctx, "pets"); err != nil {
		return nil, err
	}
	if f.web, err = e.createClient(ctx, f.pool, "web", 0); err != nil {
		return nil, err
	}
	if f.short, err = e.createClient(ctx, f.pool, "short-lived", 1); err != nil {
		return nil, err
	}
	if f.other, err = e.createClient(ctx, f.pool, "partner-app", 0); err != nil {
		return nil, err
	}
	for _, g := range f.aliceGroups {
		if err := e.createGroup(ctx, f.pool, g); err != nil {
			return nil, err
		}
	}
	if f.alice, err = e.createUser(ctx, f.pool, "alice@example.com"); err != nil {
		return nil, err
	}
	if f.bob, err = e.createUser(ctx, f.pool, "bob@example.com"); err != nil {
		return nil, err
	}
	for _, g := range f.aliceGroups {
		if err := e.addToGroup(ctx, f.pool, f.alice, g); err != nil {
			return nil, err
		}
	}
	if f.aliceWeb, err = e.signIn(ctx, f.web, f.alice); err != nil {
		return nil, err
	}
	if f.bobWeb, err = e.signIn(ctx, f.web, f.bob); err != nil {
		return nil, err
	}
	if f.aliceOther, err = e.signIn(ctx, f.other, f.alice); err != nil {
		return nil, err
	}
	short, err := e.signIn(ctx, f.short, f.alice)
	if err != nil {
		return nil, err
	}
	f.shortID = short.id

	if f.otherPool, err = e.createPool(ctx, "partners"); err != nil {
		return nil, err
	}
	otherClient, err := e.createClient(ctx, f.otherPool, "partner-web", 0)
	if err != nil {
		return nil, err
	}
	carol, err := e.createUser(ctx, f.otherPool, "carol@example.com")
	if err != nil {
		return nil, err
	}
	carolTokens, err := e.signIn(ctx, otherClient, carol)
	if err != nil {
		return nil, err
	}
	f.carolID = carolTokens.id

	// The issuer and the scope are read from real tokens, not assumed.
	idClaims, err := payload(f.aliceWeb.id)
	if err != nil {
		return nil, fmt.Errorf("alice's ID token: %w", err)
	}
	f.issuer, _ = idClaims["iss"].(string)
	if want := e.url + "/" + f.pool; f.issuer != want {
		return nil, fmt.Errorf("cognito-local issued iss %q, want %q (its TokenConfig.IssuerDomain is http://HOST:PORT)", f.issuer, want)
	}
	f.jwksURI = f.issuer + "/.well-known/jwks.json"
	if err := checkJWKS(ctx, f.jwksURI, f.aliceWeb.id); err != nil {
		return nil, err
	}
	accessClaims, err := payload(f.aliceWeb.access)
	if err != nil {
		return nil, fmt.Errorf("alice's access token: %w", err)
	}
	f.scope, _ = accessClaims["scope"].(string)
	if f.scope == "" || strings.ContainsAny(f.scope, " \"'") {
		return nil, fmt.Errorf("access token scope %q: want one plain scope", f.scope)
	}
	shortClaims, err := payload(f.shortID)
	if err != nil {
		return nil, fmt.Errorf("short-lived ID token: %w", err)
	}
	exp, expOK := shortClaims["exp"].(float64)
	iat, iatOK := shortClaims["iat"].(float64)
	if !expOK || !iatOK || exp-iat > 5 {
		return nil, fmt.Errorf("short-lived ID token: exp %v iat %v: cognito-local ignored IdTokenValidity", shortClaims["exp"], shortClaims["iat"])
	}
	f.shortExp = time.Unix(int64(exp), 0)
	return f, nil
}

// checkJWKS confirms that url serves the key that signed tok.
func checkJWKS(ctx context.Context, url, tok string) error {
	hdr, err := segment(tok, 0)
	if err != nil {
		return err
	}
	var h struct{ Kid, Alg string }
	if err := json.Unmarshal(hdr, &h); err != nil {
		return fmt.Errorf("token header: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("GET %s: %w", url, err)
	}
	defer resp.Body.Close()
	var set struct {
		Keys []struct{ Kid, Kty, Alg string }
	}
	if err := json.NewDecoder(resp.Body).Decode(&set); err != nil || resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s: %v", url, resp.Status, err)
	}
	if !slices.ContainsFunc(set.Keys, func(k struct{ Kid, Kty, Alg string }) bool { return k.Kid == h.Kid && k.Kty == "RSA" }) {
		return fmt.Errorf("JWKS at %s has no RSA key %q (token alg %s)", url, h.Kid, h.Alg)
	}
	return nil
}

// segment decodes part i of a compact JWS.
func segment(tok string, i int) ([]byte, error) {
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		return nil, fmt.Errorf("token has %d segments, want 3", len(parts))
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[i])
	if err != nil {
		return nil, fmt.Errorf("token segment %d: %w", i, err)
	}
	return b, nil
}

// payload decodes a token's claims without verifying anything.
func payload(tok string) (map[string]any, error) {
	b, err := segment(tok, 1)
	if err != nil {
		return nil, err
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("token payload: %w", err)
	}
	return m, nil
}
