#!/usr/bin/env bash
# Checks what `goreleaser release --snapshot` left in dist/ (make
# release-check): every platform's archive, an SPDX SBOM per archive that
# names this module and its dependencies, checksums for all of them, and a
# linux/amd64 binary whose version stamps differ (version, then commit).
set -euo pipefail
dist=${1:-dist}
fail() { echo "check-dist: $*" >&2; exit 1; }
n=0
for os in linux darwin; do
  for arch in amd64 arm64; do
    a=$(compgen -G "$dist/extauthz_*_${os}_${arch}.tar.gz" | head -n1) || fail "no archive for $os/$arch"
    s="$a.sbom.json"
    [ -s "$s" ] || fail "no SBOM $s"
    grep -q '"spdxVersion"' "$s" || fail "$s is not SPDX JSON"
    grep -q 'github.com/cognito-extauthz/cognito-extauthz' "$s" || fail "$s does not name the module"
    grep -q 'go.uber.org/zap' "$s" || fail "$s lists no dependencies"
    grep -q "  $(basename "$a")\$" "$dist/checksums.txt" || fail "checksums.txt lacks $(basename "$a")"
    n=$((n + 1))
  done
done
bin=$(compgen -G "$dist/extauthz_linux_amd64*/extauthz" | head -n1) || fail "no linux/amd64 binary"
if [ "$(uname -s)/$(uname -m)" = Linux/x86_64 ]; then
  out=$("$bin" version)
  v=$(sed -n 's/^extauthz //p' <<<"$out")
  c=$(sed -n 's/^commit //p' <<<"$out")
  [[ $v == *snapshot* && -n $c && $v != "$c" ]] || fail "version output: $out"
fi
echo "check-dist: $n archives, $n SBOMs, checksums, version stamps: ok"
