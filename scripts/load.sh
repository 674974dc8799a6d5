#!/usr/bin/env bash
# Load benchmark of the Check path: builds extauthz, starts `extauthz dev`
# (embedded policy, built-in issuer) on free loopback ports, mints a token
# from its /dev/token endpoint, and drives Check with ghz (pinned in go.mod
# as a tool) in two scenarios:
#   allow: one ID token, verified once and then served from the token cache,
#          on route list-pets (GET /pets)
#   deny:  no token (401 token_missing)
# It prints requests/s and p50/p95/p99 latency per scenario, and the
# decisions the server itself counted, so a run that measured the wrong
# thing shows.
#
# Tunables (environment): LOAD_CONCURRENCY (50), LOAD_DURATION (10s),
# LOAD_CONNECTIONS (1: one HTTP/2 connection, as one Envoy worker would
# use), LOAD_WARMUP (2s, not reported), LOAD_CPUS (ghz's --cpus, default all),
# GHZ (the ghz command, default `go tool ghz`).
#
# ghz and the server share this machine's cores: the figures are a floor of
# what the server alone can do, and are comparable only between runs on the
# same machine.
set -euo pipefail
cd "$(dirname "$0")/.."

concurrency=${LOAD_CONCURRENCY:-50}
duration=${LOAD_DURATION:-10s}
connections=${LOAD_CONNECTIONS:-1}
warmup=${LOAD_WARMUP:-2s}
read -r -a ghz <<<"${GHZ:-go tool ghz}"
ghz_cpus=()
[[ -n ${LOAD_CPUS:-} ]] && ghz_cpus=(--cpus "$LOAD_CPUS")

tmp=$(mktemp -d)
server_pid=""
cleanup() {
  if [[ -n $server_pid ]] && kill -0 "$server_pid" 2>/dev/null; then
    kill -TERM "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
  fi
  rm -rf "$tmp"
}
trap cleanup EXIT

die() {
  echo "load.sh: $*" >&2
  if [[ -s $tmp/dev.err ]]; then
    echo "--- extauthz dev stderr (last lines):" >&2
    tail -n 20 "$tmp/dev.err" >&2
  fi
  exit 1
}

# free_port prints a loopback TCP port nothing listens on.
free_port() {
  local p
  for _ in $(seq 100); do
    p=$((20000 + RANDOM % 40000))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
      echo "$p"
      return 0
    fi
  done
  return 1
}

# checks_total prints the sum of extauthz_checks_total series whose labels
# contain $1 (e.g. reason="allowed").
checks_total() {
  curl -fsS "http://$admin/metrics" |
    awk -v want="$1" '/^extauthz_checks_total\{/ && index($0, want) { s += $NF } END { printf "%d\n", s }'
}

echo "building extauthz and ghz..." >&2
go build -o "$tmp/extauthz" ./cmd/extauthz
"${ghz[@]}" --version >/dev/null 2>&1 || die "ghz does not run: ${ghz[*]}"

grpc="127.0.0.1:$(free_port)" || die "no free port"
admin="127.0.0.1:$(free_port)" || die "no free port"
[[ $grpc != "$admin" ]] || die "picked the same port twice; run again"
"$tmp/extauthz" dev --grpc-addr "$grpc" --admin-addr "$admin" --log-level warn \
  >"$tmp/dev.out" 2>"$tmp/dev.err" &
server_pid=$!

for _ in $(seq 300); do
  kill -0 "$server_pid" 2>/dev/null || die "extauthz dev exited"
  if curl -fsS -o /dev/null "http://$admin/readyz" 2>/dev/null; then
    break
  fi
  sleep 0.1
done
curl -fsS -o /dev/null "http://$admin/readyz" || die "extauthz dev not ready after 30s"

id_token=$(curl -fsS "http://$admin/dev/token?type=id") || die "cannot mint a token"

# Make sure each scenario is what it claims before timing it.
"$tmp/extauthz" check --addr "$grpc" --path /pets --token "$id_token" >"$tmp/allow.out" ||
  die "the allow scenario is not allowed: $(cat "$tmp/allow.out")"
rc=0
"$tmp/extauthz" check --addr "$grpc" --path /pets >"$tmp/deny.out" || rc=$?
[[ $rc == 1 ]] && grep -q '"reason": "token_missing"' "$tmp/deny.out" ||
  die "the deny scenario is not a token_missing deny (exit $rc): $(cat "$tmp/deny.out")"

printf '{"attributes":{"request":{"http":{"method":"GET","path":"/pets","headers":{"authorization":"Bearer %s"}}}}}\n' \
  "$id_token" >"$tmp/allow.json"
printf '{"attributes":{"request":{"http":{"method":"GET","path":"/pets"}}}}\n' >"$tmp/deny.json"

# run_case NAME DATA_FILE REASON_LABEL: warm up, measure, and print one row.
run_case() {
  local name=$1 data=$2 label=$3 before after out
  "${ghz[@]}" --insecure --call envoy.service.auth.v3.Authorization/Check -D "$data" \
    -c "$concurrency" --connections "$connections" -z "$warmup" "${ghz_cpus[@]}" "$grpc" >/dev/null ||
    die "ghz warm-up failed for $name"
  before=$(checks_total "$label")
  out=$("${ghz[@]}" --insecure --call envoy.service.auth.v3.Authorization/Check -D "$data" \
    -c "$concurrency" --connections "$connections" -z "$duration" "${ghz_cpus[@]}" "$grpc") ||
    die "ghz failed for $name"
  after=$(checks_total "$label")
  printf "%s\n" "$out" >"$tmp/$name.ghz"
  [[ -n ${LOAD_VERBOSE:-} ]] && printf "%s\n" "$out" >&2
  awk -v name="$name" -v counted="$((after - before))" '
    /Count:/        { count = $2 }
    /Requests\/sec:/ { rps = $2 }
    / 50 % in /     { p50 = $4 " " $5 }
    / 95 % in /     { p95 = $4 " " $5 }
    / 99 % in /     { p99 = $4 " " $5 }
    /^ *\[OK\]/     { ok = $2 }
    # Error distribution lines: "[N]   rpc error: ...". Requests still in
    # flight when ghz stops end with its own "connection is closing"; they
    # say nothing about the server and are reported apart.
    /^ *\[[0-9]+\] +rpc error/ {
      n = $1; gsub(/[\[\]]/, "", n)
      if ($0 ~ /connection is closing|transport is closing/) cut += n; else errs += n
    }
    END {
      printf "%-24s %10s %10s %10s %10s %9d %9d %7d %7d\n", name, rps, p50, p95, p99, count, ok, errs + 0, cut + 0
      if (counted + 0 < ok + 0) printf "  warning: the server counted %d such decisions for %d OK responses\n", counted, ok
    }' "$tmp/$name.ghz"
}

cpu_model=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
echo
echo "extauthz load benchmark ($(date -u +%Y-%m-%dT%H:%M:%SZ))"
echo "machine:   $(nproc) CPUs, ${cpu_model:-unknown CPU}, $(go env GOVERSION) $(go env GOOS)/$(go env GOARCH)"
echo "load:      ghz -c $concurrency -z $duration, $connections connection(s), ${warmup} warm-up; ghz and the server share the machine"
echo "server:    extauthz dev, log level warn, token cache on"
echo "columns:   rps over the whole run; latency percentiles as ghz measures them (client side);"
echo "           errors = failed RPCs; cut = requests in flight when ghz stopped (its own cancellation)"
echo
printf '%-24s %10s %10s %10s %10s %9s %9s %7s %7s\n' scenario "rps" "p50" "p95" "p99" requests ok errors cut
run_case "allow-cached-id-token" "$tmp/allow.json" 'reason="allowed"'
run_case "deny-no-token" "$tmp/deny.json" 'reason="token_missing"'
