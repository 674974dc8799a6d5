#!/usr/bin/env bash
# Checks what `goreleaser release --snapshot` left in dist/ (make
# release-check): every platform's archive, an SPDX SBOM per archive that
# names this module and its dependencies, checksums for all of them, and a
# linux/amd64 binary whose version stamps differ (version, then commit).
# Given `make build`'s binary as REFERENCE, also that every platform's
# binary was built like it: the same toolchain and recorded build settings
# (`go version -m`: -tags, -trimpath, CGO_ENABLED, ...), no symbol table
# and no DWARF when it has none (-ldflags -s -w, which -trimpath keeps out
# of the recorded settings; scripts/buildsettings prints all of these),
# and the version stamps of the linux/amd64 binary in each (-X).
#   usage: check-dist.sh [DIST [REFERENCE]]
set -euo pipefail
dist=${1:-dist}
ref=${2:-}
GO=${GO:-go}
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
# Every relative link of the Markdown files in an archive resolves inside it.
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
tar -xzf "$(compgen -G "$dist/extauthz_*_linux_amd64.tar.gz" | head -n1)" -C "$tmp"
links=0
while IFS= read -r md; do
  while IFS= read -r target; do
    target=${target%%#*}
    [ -n "$target" ] || continue
    [ -e "$(dirname "$md")/$target" ] || fail "archive: ${md#"$tmp"/} links to $target, which the archive lacks (.goreleaser.yaml archives.files)"
    links=$((links + 1))
  done < <(grep -o '](\([^)]*\))' "$md" | sed 's/^](//; s/)$//' | grep -v -E '^[a-z]+:|^#' || true)
done < <(find "$tmp" -name '*.md')
[ "$links" -gt 0 ] || fail "archive: no Markdown links found (is README.md in it?)"
bin=$(compgen -G "$dist/extauthz_linux_amd64*/extauthz" | head -n1) || fail "no linux/amd64 binary"
v= c=
if [ "$(uname -s)/$(uname -m)" = Linux/x86_64 ]; then
  out=$("$bin" version)
  v=$(sed -n 's/^extauthz //p' <<<"$out")
  c=$(sed -n 's/^commit //p' <<<"$out")
  [[ $v == v*snapshot* && -n $c && $v != "$c" ]] || fail "version output: $out"
fi
built=
if [ -n "$ref" ]; then
  [ -x "$ref" ] || fail "no reference binary $ref (make build)"
  settings() { "$GO" run ./scripts/buildsettings "$1" || fail "cannot read the build settings of $1"; }
  want=$(settings "$ref")
  for os in linux darwin; do
    for arch in amd64 arm64; do
      b=$(compgen -G "$dist/extauthz_${os}_${arch}*/extauthz" | head -n1) || fail "no $os/$arch binary"
      got=$(settings "$b")
      if [ "$got" != "$want" ]; then
        echo "check-dist: $b is not built as $ref (make build) is; - make build, + goreleaser:" >&2
        diff <(echo "$want") <(echo "$got") | sed -n 's/^< /- /p; s/^> /+ /p' >&2
        fail "build settings differ: make the build in .goreleaser.yaml match the Makefile's"
      fi
      # -X: the stamps the linux/amd64 binary printed are in every binary.
      if [ -n "$v" ]; then
        grep -qaF -- "$v" "$b" && grep -qaF -- "$c" "$b" || fail "$b lacks the version stamps $v, $c"
      fi
    done
  done
  built=", built as $ref"
fi
echo "check-dist: $n archives ($links links inside resolve), $n SBOMs, checksums, version stamps$built: ok"
