#!/usr/bin/env bash
# Runs every fuzz target of the module, one after another, each for the
# given time (default 20s): scripts/fuzz.sh 1m. Targets are found with
# `go test -list` in the packages whose tests declare a Fuzz function. New
# failing inputs land in the package's testdata/fuzz/<Target>/, where plain
# `go test` replays them from then on. Exits non-zero if any target failed,
# after running them all.
set -euo pipefail
cd "$(dirname "$0")/.."

fuzztime=${1:-20s}
[[ $# -le 1 ]] || { echo "usage: $0 [fuzztime]" >&2; exit 2; }

failed=()
ran=0
while IFS=$'\t' read -r pkg dir; do
  # Only packages with a Fuzz function in a test file need `go test -list`
  # (which compiles the package's tests).
  grep -qs '^func Fuzz' "$dir"/*_test.go || continue
  mapfile -t targets < <(go test -list '^Fuzz' "$pkg" | grep '^Fuzz' || true)
  for target in "${targets[@]}"; do
    echo "== $pkg $target ($fuzztime)"
    ran=$((ran + 1))
    if ! go test -run '^$' -fuzz "^${target}\$" -fuzztime "$fuzztime" "$pkg"; then
      failed+=("$pkg $target")
    fi
  done
done < <(go list -f '{{.ImportPath}}{{"\t"}}{{.Dir}}' ./...)

echo
if ((ran == 0)); then
  echo "no fuzz targets found" >&2
  exit 1
fi
if ((${#failed[@]})); then
  echo "${#failed[@]} of $ran fuzz targets failed:"
  printf '  %s\n' "${failed[@]}"
  exit 1
fi
echo "$ran fuzz targets ran for $fuzztime each; no failures"
