#!/usr/bin/env bash
# bench/gateway/run.sh — what brigade adds in front of a fast upstream.
#
# The same open-loop load (bench/gateway/loadgen.c) goes to a fake
# OpenAI-compatible upstream (bench/gateway/upstream.c) directly, then
# through brigade routing to that upstream, at each rate in BENCH_RATES.
# The difference in latency is what brigade adds; brigade's CPU time over
# the through-brigade run, divided by the requests it answered, is its CPU
# per request.  The non-streaming load also goes through a byte relay
# (bench/gateway/relay.c) that parses nothing: what any proxy hop adds on
# this machine, the floor under brigade's numbers.  Writes
# bench/results/gateway.md and prints it.
#
#   make bench-gateway          (builds brigade first)
#   bash bench/gateway/run.sh   (uses build/brigade, building it when missing)
#
# Environment:
#   BENCH_SECONDS=10     measured seconds per row, over all its rounds
#   BENCH_ROUNDS=5       rounds per row: each round runs every path of the
#                        row in turn (direct, relay, brigade) for
#                        BENCH_SECONDS/BENCH_ROUNDS, so the machine's slow
#                        spells fall on all paths alike; a row reports the
#                        median of its rounds
#   BENCH_WARMUP=1       warm-up seconds per round and path (not measured)
#   BENCH_RATES="500 2000"
#   BENCH_CONNECTIONS=32
#   BENCH_STREAM_RATE=500  rate of the extra streaming (stream:true) pair; 0 skips it
#   BENCH_PIN=none       where the processes run: none (the scheduler
#                        places them), split (the load generator on CPU 1;
#                        upstream, relay and brigade on CPU 0), one (all on
#                        CPU 0)
#   BRIGADE_BIN=path     a brigade binary other than build/brigade
#   BENCH_OUT=bench/results/gateway.md
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT"

SECONDS_TOTAL=${BENCH_SECONDS:-10}
ROUNDS=${BENCH_ROUNDS:-5}
SECONDS_MEASURED=$(((SECONDS_TOTAL + ROUNDS - 1) / ROUNDS))
WARMUP=${BENCH_WARMUP:-1}
RATES=${BENCH_RATES:-"500 2000"}
CONNS=${BENCH_CONNECTIONS:-32}
STREAM_RATE=${BENCH_STREAM_RATE:-500}
RESULT=${BENCH_OUT:-bench/results/gateway.md}
BRIGADE=${BRIGADE_BIN:-build/brigade}
PIN=${BENCH_PIN:-none}
case $PIN in
none) ON_SERVERS=() ON_LOAD=() ;;
split) ON_SERVERS=(taskset -c 0) ON_LOAD=(taskset -c 1) ;;
one) ON_SERVERS=(taskset -c 0) ON_LOAD=(taskset -c 0) ;;
*)
	echo "run.sh: BENCH_PIN is none, split or one, not '$PIN'" >&2
	exit 2
	;;
esac
BIN=bench/out
CFLAGS=(-std=c17 -D_GNU_SOURCE -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -O2)

# --- build -----------------------------------------------------------------
mkdir -p "$BIN" "$(dirname "$RESULT")"
${CC:-cc} "${CFLAGS[@]}" bench/gateway/upstream.c -o "$BIN/upstream"
${CC:-cc} "${CFLAGS[@]}" bench/gateway/loadgen.c -o "$BIN/loadgen" -lm
${CC:-cc} "${CFLAGS[@]}" bench/gateway/relay.c -o "$BIN/relay"
${CC:-cc} "${CFLAGS[@]}" bench/gateway/pingpong.c -o "$BIN/pingpong"
if [[ ! -x $BRIGADE ]]; then
	make --no-print-directory all
fi

# --- processes and clean-up ------------------------------------------------
TMP=$(mktemp -d "${TMPDIR:-/tmp}/brigade-gw.XXXXXX")
UP_PID=
RL_PID=
BR_PID=
cleanup() {
	local pid
	for pid in $BR_PID $RL_PID $UP_PID; do
		kill "$pid" 2>/dev/null || true
	done
	for pid in $BR_PID $RL_PID $UP_PID; do
		wait "$pid" 2>/dev/null || true
	done
	rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Waits for "listening on http://HOST:PORT" in file $1 (process $2); prints PORT.
wait_port() {
	local file=$1 pid=$2 port
	for _ in $(seq 1 200); do
		port=$(sed -n 's|.*listening on http://[^:]*:\([0-9][0-9]*\).*|\1|p' "$file" | head -n 1)
		if [[ -n $port ]]; then
			echo "$port"
			return 0
		fi
		if ! kill -0 "$pid" 2>/dev/null; then
			break
		fi
		sleep 0.05
	done
	echo "run.sh: $file: no 'listening on' line" >&2
	cat "$file" "$file.err" >&2 2>/dev/null || true
	return 1
}

"${ON_SERVERS[@]}" "$BIN/upstream" 0 >"$TMP/upstream.out" 2>"$TMP/upstream.out.err" &
UP_PID=$!
UPORT=$(wait_port "$TMP/upstream.out" "$UP_PID")

"${ON_SERVERS[@]}" "$BIN/relay" 0 "$UPORT" >"$TMP/relay.out" 2>"$TMP/relay.out.err" &
RL_PID=$!
RPORT=$(wait_port "$TMP/relay.out" "$RL_PID")

cat >"$TMP/models.yaml" <<EOF
server:
  host: 127.0.0.1
  port: 0
  max_concurrent_requests: 1000  # admission must not be what is measured
preload: []
models: {}
EOF
cat >"$TMP/providers.yaml" <<EOF
providers:
  fake:
    kind: openai
    base_url: http://127.0.0.1:$UPORT/v1
    models: [fake]
EOF
INFERENCE_LOG_LEVEL=warn "${ON_SERVERS[@]}" "$BRIGADE" serve --config "$TMP/models.yaml" \
	--providers "$TMP/providers.yaml" --port 0 >"$TMP/brigade.out" 2>"$TMP/brigade.out.err" &
BR_PID=$!
BPORT=$(wait_port "$TMP/brigade.out" "$BR_PID")

# --- measuring ---------------------------------------------------------------
TICK=$(getconf CLK_TCK)

# utime + stime of process $1 (every thread), in clock ticks.  Fields 14 and
# 15 of /proc/PID/stat, counted after the ")" that ends the command name.
cpu_ticks() {
	local rest
	rest=$(sed 's/^.*) //' "/proc/$1/stat")
	awk '{ print $12 + $13 }' <<<"$rest"
}

# The value of key $2 in a loadgen result line $1.
field() {
	sed -n "s/.* $2=\([^ ]*\).*/\1/p" <<<" $1"
}

# Connections the upstream has accepted so far (it prints its counters on
# SIGUSR1).
upstream_conns() {
	local n0 line
	n0=$(grep -c '^stats' "$TMP/upstream.out" || true)
	kill -USR1 "$UP_PID"
	for _ in $(seq 1 100); do
		if (($(grep -c '^stats' "$TMP/upstream.out" || true) > n0)); then
			line=$(grep '^stats' "$TMP/upstream.out" | tail -n 1)
			field "$line" connections
			return 0
		fi
		sleep 0.02
	done
	echo "run.sh: the upstream did not answer SIGUSR1" >&2
	return 1
}

body() {
	local stream=$1
	if [[ $stream == 1 ]]; then
		echo '{"model":"fake","messages":[{"role":"user","content":"hi"}],"max_tokens":16,"stream":true}'
	else
		echo '{"model":"fake","messages":[{"role":"user","content":"hi"}],"max_tokens":16}'
	fi
}

# run_load NAME PORT RATE STREAM PID: one loadgen run; its line goes to
# $TMP/NAME.res, PID's CPU ticks over the run to $TMP/NAME.cpu, the
# connections the upstream accepted during it to $TMP/NAME.conns, the first
# error (if any) to $TMP/NAME.err.
run_load() {
	local name=$1 port=$2 rate=$3 stream=$4 pid=$5 c0 c1 line u0 u1
	echo "  $name: $rate req/s, $CONNS connections, ${WARMUP}s warm-up + ${SECONDS_MEASURED}s" >&2
	u0=$(upstream_conns)
	c0=$(cpu_ticks "$pid")
	line=$("${ON_LOAD[@]}" "$BIN/loadgen" 127.0.0.1 "$port" /v1/chat/completions "$(body "$stream")" \
		"$CONNS" "$rate" "$SECONDS_MEASURED" "$WARMUP" 2>"$TMP/$name.err")
	c1=$(cpu_ticks "$pid")
	u1=$(upstream_conns)
	if ! kill -0 "$BR_PID" 2>/dev/null; then
		echo "run.sh: brigade exited during $name:" >&2
		cat "$TMP/brigade.out.err" >&2
		exit 1
	fi
	if ! kill -0 "$RL_PID" 2>/dev/null; then
		echo "run.sh: the relay exited during $name:" >&2
		cat "$TMP/relay.out.err" >&2
		exit 1
	fi
	echo "$line" >"$TMP/$name.res"
	echo $((c1 - c0)) >"$TMP/$name.cpu"
	echo $((u1 - u0)) >"$TMP/$name.conns"
	echo "    $line" >&2
}

# merge NAME: one result for NAME from its rounds NAME.r1 … NAME.rN: the
# median of each latency and rate field, the sum of the counts, CPU ticks
# and connections; the rounds' p50s are kept as p50_rounds for the report.
merge() {
	local name=$1 i
	for i in $(seq 1 "$ROUNDS"); do
		cat "$TMP/$name.r$i.res"
	done | awk '
		function median(k,   n, i, j, t, v) {
			n = 0
			for (i = 1; i <= NR; i++) v[++n] = val[i, k]
			for (i = 1; i <= n; i++)
				for (j = i + 1; j <= n; j++)
					if (v[j] < v[i]) { t = v[i]; v[i] = v[j]; v[j] = t }
			return n % 2 ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2
		}
		{ for (i = 1; i <= NF; i++) { split($i, kv, "="); val[NR, kv[1]] = kv[2]; keys[kv[1]] = 1 } }
		END {
			line = ""
			for (k in keys) {
				if (k ~ /^(requests|errors|total|total_errors)$/) {
					s = 0; for (i = 1; i <= NR; i++) s += val[i, k]; v = s
				} else v = sprintf("%.1f", median(k))
				line = line k "=" v " "
			}
			r = ""; for (i = 1; i <= NR; i++) r = r (i > 1 ? "," : "") val[i, "p50_us"]
			print line "p50_rounds=" r
		}' >"$TMP/$name.res"
	local cpu=0 conns=0
	for i in $(seq 1 "$ROUNDS"); do
		cpu=$((cpu + $(cat "$TMP/$name.r$i.cpu")))
		conns=$((conns + $(cat "$TMP/$name.r$i.conns")))
		[[ -s $TMP/$name.r$i.err ]] && cp "$TMP/$name.r$i.err" "$TMP/$name.err"
		rm -f "$TMP/$name.r$i.err"
	done
	echo "$cpu" >"$TMP/$name.cpu"
	echo "$conns" >"$TMP/$name.conns"
}

# run_row RATE STREAM PATH…: ROUNDS rounds, each running every path in turn.
run_row() {
	local rate=$1 stream=$2 sfx="" path i port pid
	shift 2
	[[ $stream == 1 ]] && sfx="-stream"
	for i in $(seq 1 "$ROUNDS"); do
		for path in "$@"; do
			case $path in
			direct) port=$UPORT pid=$UP_PID ;;
			relay) port=$RPORT pid=$RL_PID ;;
			brigade) port=$BPORT pid=$BR_PID ;;
			esac
			run_load "$path-$rate$sfx.r$i" "$port" "$rate" "$stream" "$pid"
		done
	done
	for path in "$@"; do
		merge "$path-$rate$sfx"
	done
}

echo "gateway benchmark: upstream on :$UPORT, relay on :$RPORT, brigade on :$BPORT" >&2
# What a wake-up across loopback costs here (bench/gateway/pingpong.c):
# the part of every hop that no proxy controls.
PP_SAME=$("$BIN/pingpong" 20000 0 0)
PP_CROSS=$("$BIN/pingpong" 20000 1 0)
echo "  loopback round trip: one CPU $PP_SAME; across CPUs $PP_CROSS" >&2
ROWS=()
for rate in $RATES; do
	run_row "$rate" 0 direct relay brigade
	ROWS+=("$rate:0")
done
if [[ $STREAM_RATE != 0 ]]; then
	run_row "$STREAM_RATE" 1 direct brigade
	ROWS+=("$STREAM_RATE:1")
fi

# --- the report --------------------------------------------------------------
sub() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", a - b }'; }
cpu_per_req() { # ticks total-requests -> µs per request
	awk -v t="$1" -v n="$2" -v hz="$TICK" 'BEGIN { if (n > 0) printf "%.1f", t * 1e6 / hz / n; else print "n/a" }'
}
verdict() { awk -v v="$1" -v lim="$2" 'BEGIN { print (v <= lim) ? "PASS" : "MISS" }'; }

COMMIT=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
if [[ -n $(git status --porcelain -- src 2>/dev/null) ]]; then
	TREE="working tree has uncommitted changes under src/"
else
	TREE="working tree clean under src/"
fi
CPU_MODEL=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)

{
	echo "# Gateway benchmark: what brigade adds in front of a fast upstream"
	echo
	echo "- date: $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
	echo "- machine: $(nproc) CPUs, ${CPU_MODEL:-unknown CPU}, Linux $(uname -r)"
	echo "- brigade: commit $COMMIT ($TREE), binary \`$BRIGADE\`${BRIGADE_BUILT_FROM:+, built from $BRIGADE_BUILT_FROM}"
	echo "- load: \`bench/gateway/loadgen\`, open loop (latency from each request's scheduled time)," \
		"$CONNS keep-alive connections; each row is $ROUNDS rounds, and each round runs every path of" \
		"the row in turn, ${WARMUP} s warm-up then ${SECONDS_MEASURED} s measured; a row's figures" \
		"are the medians of its rounds (request, error and connection counts are sums)"
	echo "- upstream: \`bench/gateway/upstream\` (C, one thread, epoll), same machine; brigade routes" \
		"model \`fake\` to it as provider \`fake\` (\`kind: openai\`), no local models"
	echo "- floor: \`bench/gateway/relay\` (C, one thread, epoll), a TCP byte relay in front of" \
		"the same upstream that parses nothing (one upstream connection per client connection)"
	echo "- body: \`$(body 0)\` (streaming rows add \`\"stream\":true\`)"
	echo "- loopback round trip between two processes (\`bench/gateway/pingpong\`, two wake-ups," \
		"back to back): both on CPU 0 p50 $(field "$PP_SAME" p50_us) µs / p99" \
		"$(field "$PP_SAME" p99_us) µs; CPU 1 to CPU 0 p50 $(field "$PP_CROSS" p50_us) µs / p99" \
		"$(field "$PP_CROSS" p99_us) µs. A proxy hop adds two such wake-ups; where they cross CPUs," \
		"the second figure is most of what any proxy adds here"
	case $PIN in
	none) echo "- placement (BENCH_PIN=none): nothing pinned; load generator, upstream, relay and brigade share every CPU" ;;
	split) echo "- placement (BENCH_PIN=split): load generator pinned to CPU 1; upstream, relay and brigade pinned to CPU 0" ;;
	one) echo "- placement (BENCH_PIN=one): every process pinned to CPU 0" ;;
	esac
	echo
	echo "| rate (req/s) | path | p50 µs | p99 µs | p99.9 µs | max µs | achieved req/s | errors | send lag µs (mean) | upstream connections opened |"
	echo "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|"
	for row in "${ROWS[@]}"; do
		rate=${row%:*}
		sfx=""
		label=""
		if [[ ${row#*:} == 1 ]]; then
			sfx="-stream"
			label=" (stream)"
		fi
		paths="direct relay brigade"
		[[ -n $sfx ]] && paths="direct brigade"
		for path in $paths; do
			line=$(cat "$TMP/$path-$rate$sfx.res")
			case $path in
			direct) name="direct" ;;
			relay) name="via byte relay (floor)" ;;
			brigade) name="via brigade" ;;
			esac
			printf '| %s | %s%s | %s | %s | %s | %s | %s | %s | %s | %s |\n' "$rate" "$name" "$label" \
				"$(field "$line" p50_us)" "$(field "$line" p99_us)" "$(field "$line" p999_us)" \
				"$(field "$line" max_us)" "$(field "$line" rate)" "$(field "$line" errors)" \
				"$(field "$line" lag_mean_us)" "$(cat "$TMP/$path-$rate$sfx.conns")"
		done
	done
	echo
	echo "| rate (req/s) | added p50 µs | added p99 µs | relay floor added p50 µs | relay floor added p99 µs | brigade CPU µs/request | relay CPU µs/request | upstream CPU µs/request (direct) |"
	echo "|---:|---:|---:|---:|---:|---:|---:|---:|"
	for row in "${ROWS[@]}"; do
		rate=${row%:*}
		sfx=""
		label=""
		if [[ ${row#*:} == 1 ]]; then
			sfx="-stream"
			label=" (stream)"
		fi
		d=$(cat "$TMP/direct-$rate$sfx.res")
		b=$(cat "$TMP/brigade-$rate$sfx.res")
		r50="n/a" r99="n/a" rcpu="n/a"
		if [[ -z $sfx ]]; then
			r=$(cat "$TMP/relay-$rate.res")
			r50=$(sub "$(field "$r" p50_us)" "$(field "$d" p50_us)")
			r99=$(sub "$(field "$r" p99_us)" "$(field "$d" p99_us)")
			rcpu=$(cpu_per_req "$(cat "$TMP/relay-$rate.cpu")" "$(field "$r" total)")
		fi
		printf '| %s%s | %s | %s | %s | %s | %s | %s | %s |\n' "$rate" "$label" \
			"$(sub "$(field "$b" p50_us)" "$(field "$d" p50_us)")" \
			"$(sub "$(field "$b" p99_us)" "$(field "$d" p99_us)")" \
			"$r50" "$r99" \
			"$(cpu_per_req "$(cat "$TMP/brigade-$rate$sfx.cpu")" "$(field "$b" total)")" \
			"$rcpu" \
			"$(cpu_per_req "$(cat "$TMP/direct-$rate$sfx.cpu")" "$(field "$d" total)")"
	done
	echo
	for rate in $RATES; do
		if [[ $rate == 2000 ]]; then
			d=$(cat "$TMP/direct-2000.res")
			b=$(cat "$TMP/brigade-2000.res")
			a50=$(sub "$(field "$b" p50_us)" "$(field "$d" p50_us)")
			a99=$(sub "$(field "$b" p99_us)" "$(field "$d" p99_us)")
			echo "Targets at 2000 req/s (BENCH_PIN=$PIN): added p50 ≤ 50 µs — $a50 µs, **$(verdict "$a50" 50)**;" \
				"added p99 ≤ 250 µs — $a99 µs, **$(verdict "$a99" 250)**."
			echo "The rounds' p50 at 2000 req/s, in order: direct $(field "$d" p50_rounds);" \
				"via brigade $(field "$b" p50_rounds) µs."
			r=$(cat "$TMP/relay-2000.res")
			echo "A byte relay that parses nothing adds" \
				"$(sub "$(field "$r" p50_us)" "$(field "$d" p50_us)") µs p50 /" \
				"$(sub "$(field "$r" p99_us)" "$(field "$d" p99_us)") µs p99 at 2000 req/s" \
				"on this machine: the floor for any proxy hop."
			echo
		fi
	done
	echo "CPU per request: the process's utime + stime from /proc/PID/stat (every thread) over" \
		"the whole run, warm-up included, divided by every request answered in it" \
		"(counted in clock ticks of $((1000000 / TICK)) µs, so ± one tick ÷ the requests of the run)." \
		"Send lag: how late the load generator wrote requests after their scheduled time" \
		"(timer wake-up plus waiting for a free connection); it is part of both paths' latency." \
		"Upstream connections opened: connections the upstream accepted during the run" \
		"(direct: the load generator's $CONNS; via the relay: one per client connection, so $CONNS;" \
		"via brigade: the ones brigade opened)." \
		"Relay floor added: through-relay minus direct, at the same rate (non-streaming runs only)."
	if [[ -s $TMP/brigade.out.err ]]; then
		echo
		echo "brigade's stderr (INFERENCE_LOG_LEVEL=warn), first 40 lines:"
		echo
		echo '```'
		head -n 40 "$TMP/brigade.out.err"
		echo '```'
	fi
	if [[ -s $TMP/relay.out.err ]]; then
		echo
		echo "The relay's stderr, first 40 lines:"
		echo
		echo '```'
		head -n 40 "$TMP/relay.out.err"
		echo '```'
	fi
	for f in "$TMP"/*.err; do
		case $f in *.out.err) continue ;; esac
		if [[ -s $f ]]; then
			echo
			echo "First error in $(basename "$f" .err):"
			echo
			echo '```'
			head -c 2048 "$f"
			echo
			echo '```'
		fi
	done
} >"$RESULT"

cat "$RESULT"
