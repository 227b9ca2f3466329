#!/usr/bin/env bash
# Prints one closing line for `make test` from the forge and cargo logs:
#   "total: N passed, M failed"
# (cargo's own last line is often an empty doc-test run, which would read as "no tests").
set -euo pipefail
forge_log="$1"
cargo_log="$2"
forge_line=$(grep -Eo '[0-9]+ tests passed, [0-9]+ failed' "$forge_log" | tail -1 || true)
forge_passed=$(awk '{print $1}' <<<"$forge_line")
forge_failed=$(awk '{print $4}' <<<"$forge_line")
read -r cargo_passed cargo_failed < <( (grep -Eo 'test result: [a-zA-Z]+\. [0-9]+ passed; [0-9]+ failed' "$cargo_log" || true) |
  awk '{p += $4; f += $6} END {print p + 0, f + 0}')
echo "forge: ${forge_passed:-0} passed, ${forge_failed:-0} failed"
echo "cargo: ${cargo_passed} passed, ${cargo_failed} failed"
echo "total: $(( ${forge_passed:-0} + cargo_passed )) passed, $(( ${forge_failed:-0} + cargo_failed )) failed"
