#!/usr/bin/env bash
# Runs brigade under valgrind's memcheck for the integration suite
# (`make valgrind`).  Any memory error or definite leak makes the process
# exit 9, which the tests see as an unclean shutdown.
# --fair-sched=yes: valgrind runs one thread at a time, and by default a
# thread busy generating tokens can hold it for seconds while the HTTP
# threads wait to parse a request; the admission tests then time out
# waiting for requests to queue.  Fair scheduling hands it round in turn.
here=$(cd "$(dirname "$0")/.." && pwd)
mkdir -p "$here/build/valgrind"
exec valgrind --quiet --fair-sched=yes --error-exitcode=9 --leak-check=full --errors-for-leak-kinds=definite \
	--show-leak-kinds=definite --suppressions="$here/tools/valgrind.supp" --log-file="$here/build/valgrind/brigade.%p.log" \
	"$here/build/brigade" "$@"
