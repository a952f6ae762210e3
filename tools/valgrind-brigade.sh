#!/usr/bin/env bash
# Runs brigade under valgrind's memcheck for the integration suite
# (`make valgrind`).  Any memory error or definite leak makes the process
# exit 9, which the tests see as an unclean shutdown.
here=$(cd "$(dirname "$0")/.." && pwd)
mkdir -p "$here/build/valgrind"
exec valgrind --quiet --error-exitcode=9 --leak-check=full --errors-for-leak-kinds=definite \
	--show-leak-kinds=definite --suppressions="$here/tools/valgrind.supp" --log-file="$here/build/valgrind/brigade.%p.log" \
	"$here/build/brigade" "$@"
