#!/usr/bin/env bash
# bench/engine/run.sh — brigade and llama.cpp's own llama-server, side by
# side: the same model file, threads, slots, context per slot, batch and
# micro-batch, the same requests (bench/engine/load.mjs), one server at a
# time.  Prints a table of ratios (brigade ÷ llama-server) against issue
# 5's targets and writes it to bench/results/engine.md.
#
#   make bench-engine                 (builds brigade first)
#   bash bench/engine/run.sh          (builds brigade, the peer and the
#                                      model only when missing)
#   BENCH_QUICK=1 bash bench/engine/run.sh   a smoke run: small sizes, ~3 min
#
# Environment:
#   MODEL=path.gguf      default: tools/mkmodel.sh qwen2.5-0.5b Q4_K_M
#   BENCH_THREADS=2      threads for both servers (decode and batch)
#   BENCH_SLOTS=32       slots (llama-server: -np)
#   BENCH_CTX=4608       context per slot (llama-server: -c = slots × this)
#   BENCH_QUICK=1        small sizes everywhere (see below)
#   BRIGADE_BIN=path     default build/brigade
#   LLAMA_SERVER_BIN=path  default deps/llama-server-build/bin/llama-server
#                        (bench/engine/build-peer.sh builds it when missing)
#   BENCH_OUT=path       default bench/results/engine.md
#   BENCH_KEEP=dir       keep every server log and JSON result in dir
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT"
T_START=$(date +%s)

QUICK=${BENCH_QUICK:-0}
THREADS=${BENCH_THREADS:-2}
SLOTS=${BENCH_SLOTS:-32}
BATCH=512
UBATCH=512
BRIGADE=${BRIGADE_BIN:-build/brigade}
PEER=${LLAMA_SERVER_BIN:-deps/llama-server-build/bin/llama-server}
RESULT=${BENCH_OUT:-bench/results/engine.md}
LOAD=(node bench/engine/load.mjs)

# Sizes.  Full: the issue's workloads, token counts scaled to a 2-core CPU.
if [[ $QUICK == 1 ]]; then
	CTX=${BENCH_CTX:-1024}
	N_SINGLE=32 N_C8=16 N_C32=8
	SYS_REQ=4 SYS_WORDS=200 SYS_TOKENS=4
	NWAY_N=5 NWAY_TOKENS=16
	GAP_ALONE=20 GAP_WORDS=600
	MODE="BENCH_QUICK=1 (smoke sizes: not for comparing with a full run)"
else
	CTX=${BENCH_CTX:-4608}
	N_SINGLE=256 N_C8=128 N_C32=64
	SYS_REQ=16 SYS_WORDS=1000 SYS_TOKENS=8
	NWAY_N=5 NWAY_TOKENS=128
	GAP_ALONE=100 GAP_WORDS=4000
	MODE="full"
fi
# The gap stream runs until the long prompt is in; the slot's context bounds it.
GAP_TOKENS=$((CTX - 128))
if ((CTX < GAP_WORDS * 11 / 10 + 128)); then
	echo "run.sh: BENCH_CTX=$CTX is too small for the ${GAP_WORDS}-word prompt of the gap workload" >&2
	exit 2
fi

# --- what is needed ------------------------------------------------------------
[[ -x $BRIGADE ]] || make --no-print-directory all
if [[ -z ${LLAMA_SERVER_BIN:-} ]]; then
	bash bench/engine/build-peer.sh
fi
[[ -x $PEER ]] || { echo "run.sh: no llama-server at $PEER" >&2; exit 1; }
MODEL=${MODEL:-$(bash tools/mkmodel.sh qwen2.5-0.5b Q4_K_M)}
MODEL=$(realpath "$MODEL")
[[ -s $MODEL ]] || { echo "run.sh: no model file $MODEL" >&2; exit 1; }

# --- processes and clean-up ----------------------------------------------------
TMP=$(mktemp -d "${TMPDIR:-/tmp}/brigade-engine.XXXXXX")
mkdir -p "$TMP/meta"
cut -d' ' -f1-3 /proc/loadavg >"$TMP/loadavg"
SRV_PID=
stop_server() {
	if [[ -n $SRV_PID ]]; then
		kill "$SRV_PID" 2>/dev/null || true
		# llama-server and brigade both finish in-flight work on SIGTERM;
		# give them 10 s, then SIGKILL.
		for _ in $(seq 1 100); do
			kill -0 "$SRV_PID" 2>/dev/null || break
			sleep 0.1
		done
		kill -9 "$SRV_PID" 2>/dev/null || true
		wait "$SRV_PID" 2>/dev/null || true
		SRV_PID=
	fi
}
cleanup() {
	stop_server
	if [[ -n ${BENCH_KEEP:-} ]]; then
		mkdir -p "$BENCH_KEEP" && cp -r "$TMP"/. "$BENCH_KEEP"/
	fi
	rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# wait_health URL: until URL answers 200 (the server is up and its model loaded).
wait_health() {
	local url=$1
	for _ in $(seq 1 1200); do
		if curl -sf -o /dev/null "$url"; then
			return 0
		fi
		if ! kill -0 "$SRV_PID" 2>/dev/null; then
			break
		fi
		sleep 0.1
	done
	echo "run.sh: no answer from $url; the server's log:" >&2
	tail -n 30 "$TMP"/*.log >&2 || true
	exit 1
}

# brigade_port LOG: the port in brigade's "listening on" line.
brigade_port() {
	local port
	for _ in $(seq 1 600); do
		port=$(sed -n 's|.*listening on http://[^:]*:\([0-9][0-9]*\).*|\1|p' "$1" | head -n 1)
		if [[ -n $port ]]; then
			echo "$port"
			return 0
		fi
		kill -0 "$SRV_PID" 2>/dev/null || break
		sleep 0.1
	done
	echo "run.sh: brigade did not say where it listens:" >&2
	cat "$1" "$TMP/brigade.log" >&2 || true
	exit 1
}

# rss PID: its resident memory, JSON, in KiB.
rss() {
	awk '/^VmRSS:/ { r = $2 } /^RssAnon:/ { a = $2 } /^RssFile:/ { f = $2 }
		END { printf "{\"rss_kib\":%d,\"anon_kib\":%d,\"file_kib\":%d}\n", r, a, f }' "/proc/$1/status"
}

# CPU time in clock ticks, to see what else ran during a workload: the
# machine's busy and stolen time (/proc/stat), process $1's utime + stime
# (every thread; fields 14-15 of /proc/PID/stat), and this script's reaped
# children's (fields 16-17 of its own: the load generator and the tools).
TICK=$(getconf CLK_TCK)
machine_ticks() { awk '/^cpu / { print $2 + $3 + $4 + $7 + $8, $9 }' /proc/stat; }
proc_ticks() { sed 's/^.*) //' "/proc/$1/stat" | awk '{ print $12 + $13 }'; }
child_ticks() { sed 's/^.*) //' "/proc/$$/stat" | awk '{ print $14 + $15 }'; }

# work NAME PORT SUBCOMMAND ARGS...: one workload; its JSON goes to
# $TMP/NAME.json, and the cores used on average during it (by the server,
# by this script and the load generator, by everything else, and stolen by
# the hypervisor) to $TMP/NAME.cpu.json.
work() {
	local name=$1 port=$2 m0 st0 s0 c0 t0 m1 st1 s1 c1 t1
	shift 2
	echo "  $name" >&2
	read -r m0 st0 < <(machine_ticks)
	s0=$(proc_ticks "$SRV_PID")
	c0=$(child_ticks)
	t0=$(date +%s%N)
	if ! "${LOAD[@]}" "$@" --port "$port" >"$TMP/$name.json"; then
		echo "run.sh: $name failed; the server's log ends:" >&2
		tail -n 20 "$TMP/${name%%-*}.log" >&2 || true
		exit 1
	fi
	if ! kill -0 "$SRV_PID" 2>/dev/null; then
		echo "run.sh: the server exited during $name:" >&2
		tail -n 30 "$TMP/${name%%-*}.log" >&2 || true
		exit 1
	fi
	t1=$(date +%s%N)
	c1=$(child_ticks)
	s1=$(proc_ticks "$SRV_PID")
	read -r m1 st1 < <(machine_ticks)
	awk -v w=$((t1 - t0)) -v hz="$TICK" -v m=$((m1 - m0)) -v st=$((st1 - st0)) -v s=$((s1 - s0)) -v c=$((c1 - c0)) \
		'BEGIN { w /= 1e9; o = m - s - c; if (o < 0) o = 0
			printf "{\"wall_s\":%.2f,\"server_cores\":%.2f,\"load_cores\":%.2f,\"other_cores\":%.2f,\"steal_cores\":%.2f}\n",
				w, s / hz / w, c / hz / w, o / hz / w, st / hz / w }' >"$TMP/$name.cpu.json"
	echo "    $(cat "$TMP/$name.json")" >&2
	echo "    cpu: $(cat "$TMP/$name.cpu.json")" >&2
	sleep 1 # let aborted streams and freed slots settle
}

# workloads WHO PORT: the workloads both servers run, in this order.
workloads() {
	local who=$1 port=$2
	work "$who-warmup" "$port" warmup
	rss "$SRV_PID" >"$TMP/$who-rss-warm.json"
	work "$who-single" "$port" single --tokens "$N_SINGLE"
	work "$who-c8" "$port" concurrent --streams 8 --tokens "$N_C8"
	work "$who-c32" "$port" concurrent --streams 32 --tokens "$N_C32"
	work "$who-sys" "$port" sysprompt --requests "$SYS_REQ" --prompt-tokens "$SYS_WORDS" --tokens "$SYS_TOKENS"
	work "$who-gap" "$port" gap --alone "$GAP_ALONE" --prompt-tokens "$GAP_WORDS" --tokens "$GAP_TOKENS"
}

# --- the configurations ----------------------------------------------------------
cat >"$TMP/brigade.yaml" <<EOF
server: {host: 127.0.0.1, port: 0, log_level: info, request_timeout: 3600, max_concurrent_requests: 1000}
preload: [m]
models:
  m: {file: $MODEL, context_length: $CTX, slots: $SLOTS, threads: $THREADS, batch: $BATCH}
EOF
# The same file with nothing preloaded: brigade's idle footprint.
sed 's/^preload: \[m\]/preload: []/' "$TMP/brigade.yaml" >"$TMP/brigade-idle.yaml"

# -kvu (--kv-unified): one KV buffer for every slot, as brigade's engine has
# (this release makes it unified by itself only when -np is left on auto).
llama_args() {
	LLAMA_ARGS=(-m "$MODEL" -t "$THREADS" -tb "$THREADS" -np "$SLOTS" -c $((SLOTS * CTX))
		-b "$BATCH" -ub "$UBATCH" --kv-unified --host 127.0.0.1 --port "$1" --no-webui)
}

# --- idle brigade --------------------------------------------------------------------
echo "engine benchmark ($MODE): $MODEL, $THREADS threads, $SLOTS slots × $CTX tokens" >&2
echo "brigade, idle (no model loaded)" >&2
INFERENCE_LOG_LEVEL=info "$BRIGADE" serve --config "$TMP/brigade-idle.yaml" >"$TMP/idle.out" 2>"$TMP/idle.log" &
SRV_PID=$!
BPORT=$(brigade_port "$TMP/idle.out")
wait_health "http://127.0.0.1:$BPORT/health"
sleep 1
rss "$SRV_PID" >"$TMP/brigade-rss-idle.json"
echo "    $(cat "$TMP/brigade-rss-idle.json")" >&2
stop_server

# --- llama-server ----------------------------------------------------------------------
LPORT=$("${LOAD[@]}" freeport)
llama_args "$LPORT"
echo "llama-server on :$LPORT" >&2
"$PEER" "${LLAMA_ARGS[@]}" >"$TMP/llama.log" 2>&1 &
SRV_PID=$!
wait_health "http://127.0.0.1:$LPORT/health"
workloads llama "$LPORT"
work llama-nway "$LPORT" nway --n "$NWAY_N" --tokens "$NWAY_TOKENS"
rss "$SRV_PID" >"$TMP/llama-rss-end.json"
stop_server

# --- brigade -------------------------------------------------------------------------------
"$BRIGADE" serve --config "$TMP/brigade.yaml" >"$TMP/brigade.out" 2>"$TMP/brigade.log" &
SRV_PID=$!
BPORT=$(brigade_port "$TMP/brigade.out")
echo "brigade on :$BPORT" >&2
wait_health "http://127.0.0.1:$BPORT/health/ready"
workloads brigade "$BPORT"
work brigade-nway "$BPORT" nway --n "$NWAY_N" --tokens "$NWAY_TOKENS"
rss "$SRV_PID" >"$TMP/brigade-rss-end.json"
stop_server

# --- the report ---------------------------------------------------------------------------
meta() { printf '%s\n' "$2" >"$TMP/meta/$1"; }
SHAPE=$("${LOAD[@]}" gguf "$MODEL")
meta shape "$SHAPE"
N_LAYER=$(sed -n 's/.*"n_layer":\([0-9]*\).*/\1/p' <<<"$SHAPE")
N_K=$(sed -n 's/.*"n_embd_k_gqa":\([0-9]*\).*/\1/p' <<<"$SHAPE")
N_V=$(sed -n 's/.*"n_embd_v_gqa":\([0-9]*\).*/\1/p' <<<"$SHAPE")
# One unified KV buffer: llama.cpp rounds the whole context up to 256 cells.
CELLS=$(((SLOTS * CTX + 255) / 256 * 256))
meta kv_bytes $((N_LAYER * CELLS * (N_K + N_V) * 2))
meta kv_formula "$N_LAYER × $CELLS × ($N_K + $N_V) × 2"
meta llama_slots_log "$(grep -m1 -o 'n_slots = .*' "$TMP/llama.log" || true)"
meta brigade_slots_log "$(grep -m1 -o 'model m loaded from .*' "$TMP/brigade.log" || true)"
meta weights_bytes "$(stat -c %s "$MODEL")"
meta date "$(date -u '+%Y-%m-%d %H:%M:%S UTC')"
CPU_MODEL=$(lscpu 2>/dev/null | sed -n 's/^Model name:[[:space:]]*//p' | head -n 1)
meta machine "${CPU_MODEL:-unknown CPU}, $(nproc) cores, $(awk '/MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo) RAM, Linux $(uname -r), load average at the start $(cat "$TMP/loadavg"), at the end $(cut -d' ' -f1-3 /proc/loadavg)"
meta model "$MODEL"
meta brigade_version "$(git describe --always --dirty 2>/dev/null || echo unknown)"
meta brigade_bin "$BRIGADE"
meta llama_commit "$(git -C deps/llama.cpp rev-parse --short HEAD 2>/dev/null || echo unknown)"
meta llama_version "$("$PEER" --version 2>&1 | grep -m1 -i 'version' || echo unknown)"
CACHE=$(dirname "$(dirname "$PEER")")/CMakeCache.txt
if [[ -f $CACHE ]]; then
	meta peer_flags "$(grep -E '^(CMAKE_BUILD_TYPE|GGML_NATIVE|BUILD_SHARED_LIBS|CMAKE_C_COMPILER):' "$CACHE" | sed 's/:[A-Z]*=/=/' | paste -sd ' ' -), $(${CC:-cc} --version | head -n 1)"
else
	meta peer_flags "unknown (no CMakeCache.txt beside $PEER)"
fi
meta brigade_config "$(cat "$TMP/brigade.yaml")"
meta brigade_cmd "$BRIGADE serve --config brigade.yaml"
meta llama_cmd "$PEER ${LLAMA_ARGS[*]}"
meta mode "$MODE"
meta sizes "{\"single\":$N_SINGLE,\"c8\":$N_C8,\"c32\":$N_C32,\"sys_words\":$SYS_WORDS,\"nway\":$NWAY_TOKENS,\"gap_words\":$GAP_WORDS}"
CEIL_LINE=$(grep -m1 '^| qwen2.5-0.5b-Q4_K_M ' bench/results/ceiling.md 2>/dev/null || true)
if [[ $(basename "$MODEL") == qwen2.5-0.5b-Q4_K_M.gguf && -n $CEIL_LINE ]]; then
	meta ceiling "$(awk -F'|' '{ gsub(/ /, "", $4); print $4 }' <<<"$CEIL_LINE")"
fi
meta total_s $(($(date +%s) - T_START))

mkdir -p "$(dirname "$RESULT")"
"${LOAD[@]}" report "$TMP" >"$TMP/engine.md"
cp "$TMP/engine.md" "$RESULT"
cat "$RESULT"
