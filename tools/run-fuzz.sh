#!/usr/bin/env bash
# Builds and runs libFuzzer harnesses for a fixed time each.
#
#   tools/run-fuzz.sh SECONDS tests/fuzz/fuzz_a.c [tests/fuzz/fuzz_b.c ...]
#
# Each harness says what it links in its first lines, so adding a harness
# needs no edit here:
#
#   // sources: src/engine/textstream.c src/core/*.c   (globs allowed)
#   // libs: -lyaml                                     (optional)
#   // cflags: -DSOMETHING                              (optional)
#
# fuzz_NAME.c is built into build/fuzz/fuzz_NAME with clang's
# -fsanitize=fuzzer,address,undefined and run for SECONDS on a copy of
# tests/fuzz/corpus/NAME/ in build/fuzz/corpus-NAME/ (new inputs land in
# the copy, so the committed seed corpus stays as it is).  Prints one line
# per harness and a total; exits non-zero when any harness failed to build
# or found a crash, leak or timeout (its output and the reproducer's path
# are printed).
set -u

if [ $# -lt 2 ] || ! [[ $1 =~ ^[0-9]+$ ]]; then
	echo "usage: $0 SECONDS fuzz_harness.c..." >&2
	exit 2
fi
seconds=$1
shift

# Harness paths may be given relative to the caller's directory.
harnesses=()
for h in "$@"; do
	harnesses+=("$(cd "$(dirname "$h")" && pwd)/$(basename "$h")")
done
cd "$(dirname "$0")/.." || exit 2
root=$(pwd)

CC_FUZZ=${CC_FUZZ:-clang}
# shellcheck disable=SC2054  # the commas belong to -fsanitize=
FLAGS=(-g -O1 -fno-omit-frame-pointer -fsanitize=fuzzer,address,undefined
	-fno-sanitize-recover=undefined -std=c17 -D_GNU_SOURCE -Isrc -I/usr/include)
out=build/fuzz
mkdir -p "$out"
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1}
export LSAN_OPTIONS=${LSAN_OPTIONS:-suppressions=$root/tools/lsan.supp}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

# The value of a "// KEY:" line among the first 10 lines of file $1.
# A key may repeat on several lines (a long source list stays within the
# 100 columns clang-format allows); the values are joined.
header_value() {
	head -n 10 "$1" | sed -n "s|^// $2:[[:space:]]*||p" | tr '\n' ' '
}

passed=0 failed=0
for h in "${harnesses[@]}"; do
	bin=$(basename "$h" .c)
	name=${bin#fuzz_}
	if [ ! -f "$h" ]; then
		echo "fuzz: $name FAILED: no such file $h"
		failed=$((failed + 1))
		continue
	fi
	sources=$(header_value "$h" sources)
	libs=$(header_value "$h" libs)
	cflags=$(header_value "$h" cflags)
	# Unquoted on purpose: word splitting and glob expansion of the lists.
	# shellcheck disable=SC2086
	if ! build_log=$("$CC_FUZZ" "${FLAGS[@]}" $cflags "$h" $sources $libs -o "$out/$bin" 2>&1); then
		printf '%s\n' "$build_log"
		echo "fuzz: $name FAILED to build"
		failed=$((failed + 1))
		continue
	fi

	corpus=$out/corpus-$name
	rm -rf "$corpus"
	mkdir -p "$corpus"
	if [ -d "tests/fuzz/corpus/$name" ]; then
		cp -r "tests/fuzz/corpus/$name/." "$corpus/"
	fi
	log=$out/$name.log
	"$out/$bin" -max_total_time="$seconds" -timeout=20 -print_final_stats=1 \
		-artifact_prefix="$out/$name-" "$corpus" >"$log" 2>&1
	rc=$?
	runs=$(grep -Eo '^Done [0-9]+ runs' "$log" | grep -Eo '[0-9]+' | tail -n 1)
	if [ $rc -eq 0 ] && [ -n "$runs" ]; then
		echo "fuzz: $name ok ($runs runs)"
		passed=$((passed + 1))
	else
		tail -n 60 "$log"
		artifact=$(grep -Eo "Test unit written to [^ ]+" "$log" | tail -n 1)
		echo "fuzz: $name FAILED (exit $rc)${artifact:+; $artifact}; full log: $log"
		failed=$((failed + 1))
	fi
done

echo "fuzz: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
