#!/usr/bin/env bash
# Runs each cmocka unit-test binary; prints each one's summary and a total.
# Exits non-zero when any test failed.
set -u
cd "$(dirname "$0")/.."
export BRIGADE_MODELS_DIR=${BRIGADE_MODELS_DIR:-$(cd ../shared/models 2>/dev/null && pwd)}
passed=0 failed=0 status=0
for t in "$@"; do
	out=$("$t" 2>&1); rc=$?
	p=$(grep -Eo '^\[  PASSED  \] [0-9]+' <<<"$out" | grep -Eo '[0-9]+$' | tail -1)
	f=$(grep -Eo '^\[  FAILED  \] [0-9]+' <<<"$out" | grep -Eo '[0-9]+$' | tail -1)
	passed=$((passed + ${p:-0})); failed=$((failed + ${f:-0}))
	if [ $rc -ne 0 ]; then
		status=1
		[ -z "$f" ] && failed=$((failed + 1))
		printf '%s\n' "$out"
		echo "unit: $(basename "$t") FAILED (exit $rc)"
	else
		echo "unit: $(basename "$t") ${p:-0} passed"
	fi
done
echo "unit: $passed passed, $failed failed"
exit $status
