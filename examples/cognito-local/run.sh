#!/usr/bin/env bash
# Real Cognito tokens on your machine, no AWS account: starts cognito-local
# (the Cognito emulator the end-to-end tests use), creates a user pool, an
# app client, a group and a user in it, signs the user in, writes a policy
# that accepts those tokens, and prints ready extauthz commands. It keeps
# cognito-local running until Ctrl-C.
#
#   examples/cognito-local/run.sh          (from anywhere; needs Node.js + npm)
#
# Settings (environment):
#   COGNITO_LOCAL_PORT   cognito-local's port, default 9229
#   OUT_DIR              where the policy, tokens and emulator data go,
#                        default .cognito-local/ at the repository root
#   EXTAUTHZ_GRPC_ADDR   the address the printed serve/check commands use,
#                        default 127.0.0.1:9001 (EXTAUTHZ_ADMIN_ADDR: 9002)
#
# What cognito-local does differently from Cognito, and how the policy
# copes (each is visible in the policy this writes):
#   - iss is http://localhost:PORT/<pool id>: its issuer host is the HOST it
#     was started with, "localhost" unless set. The policy names that issuer
#     exactly; http://127.0.0.1:... would be issuer_unknown.
#   - Pool ids look like local_AbCd1234 and its ARNs are not Cognito ARNs,
#     so the policy names the pool by userPoolId with issuer and jwksUri
#     overrides (then any pool id is accepted).
#   - Access tokens carry only the scope aws.cognito.signin.user.admin (no
#     resource servers, no custom scopes); the access-token route asks for it.
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
port=${COGNITO_LOCAL_PORT:-9229}
out=${OUT_DIR:-$root/.cognito-local}
grpc=${EXTAUTHZ_GRPC_ADDR:-127.0.0.1:9001}
admin=${EXTAUTHZ_ADMIN_ADDR:-127.0.0.1:9002}
emulator=$root/e2e/node_modules/.bin/cognito-local

command -v node >/dev/null || { echo "run.sh: Node.js is required (README, Prerequisites)" >&2; exit 1; }
if [ ! -x "$emulator" ]; then
  echo "==> installing cognito-local (make e2e-deps)" >&2
  make -C "$root" e2e-deps >&2
fi

mkdir -p "$out"
out=$(cd "$out" && pwd)
rm -rf "$out/data" && mkdir -p "$out/data"

# cognito-local keeps its pools in .cognito/ under its working directory:
# a fresh directory, a fresh emulator.
echo "==> starting cognito-local on localhost:$port (log: $out/cognito-local.log)" >&2
(cd "$out/data" && HOST=localhost PORT=$port exec "$emulator") >"$out/cognito-local.log" 2>&1 &
emu=$!
trap 'kill $emu 2>/dev/null || true; wait $emu 2>/dev/null || true' EXIT
trap 'exit 130' INT TERM

# The setup itself, in Node (already needed for cognito-local): the Cognito
# JSON API, as the AWS SDK and CLI speak it.
COGNITO_URL="http://localhost:$port" OUT="$out" node --input-type=module - <<'JS' >&2
import { writeFileSync } from "node:fs";
const url = process.env.COGNITO_URL, out = process.env.OUT;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
for (let i = 0; ; i++) {
  try { if ((await fetch(url + "/health")).ok) break; } catch {}
  if (i > 600) throw new Error(`cognito-local does not answer on ${url}; see ${out}/cognito-local.log`);
  await sleep(100);
}
async function call(op, body) {
  const r = await fetch(url + "/", {
    method: "POST",
    headers: { "Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": "AWSCognitoIdentityProviderService." + op },
    body: JSON.stringify(body),
  });
  const text = await r.text();
  if (!r.ok) throw new Error(`${op}: ${r.status} ${text}`);
  return text ? JSON.parse(text) : {};
}
const claims = (t) => JSON.parse(Buffer.from(t.split(".")[1], "base64url").toString());

const pool = (await call("CreateUserPool", { PoolName: "pets" })).UserPool.Id;
const client = (await call("CreateUserPoolClient", {
  UserPoolId: pool, ClientName: "web", ExplicitAuthFlows: ["ALLOW_USER_PASSWORD_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"],
})).UserPoolClient.ClientId;
await call("CreateGroup", { UserPoolId: pool, GroupName: "admins" });
const email = "alice@example.com", password = "Correct-Horse-9-Battery";
await call("AdminCreateUser", {
  UserPoolId: pool, Username: email, MessageAction: "SUPPRESS",
  UserAttributes: [{ Name: "email", Value: email }, { Name: "email_verified", Value: "true" }],
});
await call("AdminSetUserPassword", { UserPoolId: pool, Username: email, Password: password, Permanent: true });
await call("AdminAddUserToGroup", { UserPoolId: pool, Username: email, GroupName: "admins" });
const auth = (await call("InitiateAuth", {
  ClientId: client, AuthFlow: "USER_PASSWORD_AUTH", AuthParameters: { USERNAME: email, PASSWORD: password },
})).AuthenticationResult;

// The issuer and the scope are read from the tokens, not assumed.
const id = claims(auth.IdToken), access = claims(auth.AccessToken);
const issuer = id.iss, scope = access.scope;
if (!issuer || issuer !== access.iss) throw new Error(`unexpected iss: ${id.iss} / ${access.iss}`);
writeFileSync(out + "/id.jwt", auth.IdToken + "\n", { mode: 0o600 });
writeFileSync(out + "/access.jwt", auth.AccessToken + "\n", { mode: 0o600 });
writeFileSync(out + "/policy.yaml", `# Written by examples/cognito-local/run.sh for a cognito-local pool.
apiVersion: cognito-extauthz/v1
authorizers:
  local:
    userPools:
      - userPoolId: ${pool}            # cognito-local's id form; its ARN is not a Cognito ARN
        issuer: ${issuer}              # exactly the iss of its tokens
        jwksUri: ${issuer}/.well-known/jwks.json
    appClientIds: [${client}]
routes:
  - name: list-pets
    match: { methods: [GET], path: /pets }
    authorizer: local
    mode: identity-claims
    claimHeaders: { x-user-sub: sub, x-user-email: email, x-user-groups: "cognito:groups" }
  - name: pet
    match: { methods: [GET, DELETE], path: "/pets/{petId}" }
    authorizer: local
    mode: access-scopes
    scopes: [${scope}]   # the one scope cognito-local puts in access tokens
  - name: admin
    match: { path: "/admin/{proxy+}" }
    authorizer: local
    mode: identity-claims
    groups: [admins]
  - name: reports
    match: { path: /reports }
    authorizer: local
    mode: identity-claims
    groups: [auditors]    # alice is not an auditor
  - name: health
    match: { path: /health }
    authorization: NONE
`);
console.log(`==> pool ${pool}, app client ${client}, group admins, user ${email} (password ${password})`);
console.log(`==> iss ${issuer}, access token scope ${scope}`);
JS

# Paths as the reader types them: relative to the repository root when
# the output is under it.
rel=${out#"$root"/}
p=$rel/policy.yaml id=$rel/id.jwt acc=$rel/access.jwt
cat <<TXT

cognito-local is running (pid $emu) with a pool, an app client, a group and
a user. Their tokens (valid 1 hour) are in $rel/, with the policy that
accepts them. In another shell, at the repository root, after make build:

bin/extauthz validate --config $p                                         # ok
bin/extauthz explain --config $p --path /pets --token-file $id            # allowed
bin/extauthz serve --config $p --grpc-addr $grpc --admin-addr $admin --log-format console &
bin/extauthz check --addr $grpc --path /pets --token-file $id             # allowed
bin/extauthz check --addr $grpc --path /pets/7 --token-file $acc          # allowed
bin/extauthz check --addr $grpc --path /admin/users --token-file $id      # allowed
bin/extauthz check --addr $grpc --path /pets/7 --token-file $id           # 401 token_use_mismatch
bin/extauthz check --addr $grpc --path /reports --token-file $id          # 403 group_missing
bin/extauthz check --addr $grpc --path /pets                              # 401 token_missing

Ready. Ctrl-C stops cognito-local.
TXT
wait $emu
