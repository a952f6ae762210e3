#!/usr/bin/env bash
# bench/engine/ceiling.sh — the machine's memory bandwidth (triad.c) and the
# single-stream decode ceiling it implies for each model: one token reads
# every weight once, so ceiling = bandwidth ÷ weight bytes (the GGUF's size;
# its metadata is a rounding error).  Then brigade's measured single-stream
# decode on the Llama-3.2-1B-shaped Q4_K_M model as a share of its ceiling.
# Writes bench/results/ceiling.md and prints it.
#
#   bash bench/engine/ceiling.sh            (generates the models with
#                                            tools/mkmodel.sh when missing)
# Environment: BENCH_THREADS (default: online CPUs), BENCH_TOKENS (128),
# BRIGADE_BIN (build/brigade), BENCH_OUT.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT"
THREADS=${BENCH_THREADS:-$(nproc)}
TOKENS=${BENCH_TOKENS:-128}
BRIGADE=${BRIGADE_BIN:-build/brigade}
RESULT=${BENCH_OUT:-bench/results/ceiling.md}
mkdir -p bench/out "$(dirname "$RESULT")"
${CC:-cc} -std=c17 -D_GNU_SOURCE -Wall -Wextra -Werror -O2 bench/engine/triad.c -o bench/out/triad -lpthread
[[ -x $BRIGADE && -x build/mkmodel ]] || make --no-print-directory all

line=$(bench/out/triad "$THREADS")
GBPS=$(sed -n 's/.*triad_gbps=\([0-9.]*\).*/\1/p' <<<"$line")
echo "triad: $line" >&2

MODELS=()
for spec in tiny-llama:Q8_0 qwen2.5-0.5b:Q8_0 qwen2.5-0.5b:Q4_K_M llama-3.2-1b:F16 \
	llama-3.2-1b:Q8_0 llama-3.2-1b:Q4_K_M; do
	MODELS+=("$(bash tools/mkmodel.sh "${spec%%:*}" "${spec##*:}")")
done

# Decode tokens/s of one greedy stream: (tokens - 1) / (last - first chunk).
decode_rate() {
	local model=$1 dir port pid rate
	dir=$(mktemp -d "${TMPDIR:-/tmp}/brigade-ceiling.XXXXXX")
	cat >"$dir/models.yaml" <<EOT
server: {host: 127.0.0.1, port: 0}
preload: [m]
models:
  m: {file: $model, context_length: 1024, threads: $THREADS, slots: 1}
EOT
	INFERENCE_LOG_LEVEL=warn "$BRIGADE" serve --config "$dir/models.yaml" >"$dir/out" 2>"$dir/err" &
	pid=$!
	for _ in $(seq 1 600); do
		port=$(sed -n 's|.*listening on http://[^:]*:\([0-9]*\).*|\1|p' "$dir/out")
		[[ -n $port ]] && curl -sf "http://127.0.0.1:$port/health/ready" >/dev/null && break
		sleep 0.1
	done
	# shellcheck disable=SC2016 # JavaScript, not shell: its ${} is a template literal
	rate=$(node -e '
		const [port, n] = process.argv.slice(1);
		const body = JSON.stringify({ model: "m", prompt: "Once upon a time", max_tokens: Number(n),
			temperature: 0, stream: true, stream_options: { include_usage: true } });
		(async () => {
			const r = await fetch(`http://127.0.0.1:${port}/v1/completions`, { method: "POST",
				headers: { "content-type": "application/json" }, body });
			let first = 0, last = 0, toks = 0, rest = "";
			const dec = new TextDecoder();
			for await (const part of r.body) {
				const lines = (rest + dec.decode(part, { stream: true })).split("\n");
				rest = lines.pop();
				for (const l of lines) {
					if (!l.startsWith("data: {")) continue;
					const c = JSON.parse(l.slice(6));
					if (c.usage) { toks = c.usage.completion_tokens; continue; }
					const t = performance.now();
					if (!first) first = t;
					last = t;
				}
			}
			console.log(((toks - 1) / ((last - first) / 1000)).toFixed(1));
		})();' "$port" "$TOKENS" 2>/dev/null || echo "n/a")
	kill "$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
	rm -rf "$dir"
	echo "$rate"
}

{
	echo "# Memory bandwidth and the decode ceiling it implies"
	echo
	echo "- date: $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
	echo "- machine: $(nproc) CPUs, $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1), $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo)"
	echo "- triad (bench/engine/triad.c, $THREADS threads, 3 × 512 MiB arrays, best of 7): **$GBPS GB/s**"
	echo "- models: tools/mkmodel (random weights, real shapes and vocabularies)"
	echo
	echo "| model | file MiB | ceiling tok/s (bandwidth ÷ bytes) |"
	echo "|---|---:|---:|"
	for m in "${MODELS[@]}"; do
		bytes=$(stat -c %s "$m")
		awk -v n="$(basename "$m" .gguf)" -v b="$bytes" -v g="$GBPS" \
			'BEGIN { printf "| %s | %.1f | %.1f |\n", n, b / 1048576, g * 1e9 / b }'
	done
	echo
	m1b=$(bash tools/mkmodel.sh llama-3.2-1b Q4_K_M)
	rate=$(decode_rate "$m1b")
	ceil=$(awk -v b="$(stat -c %s "$m1b")" -v g="$GBPS" 'BEGIN { printf "%.1f", g * 1e9 / b }')
	pct=$(awk -v r="$rate" -v c="$ceil" 'BEGIN { if (r + 0 > 0) printf "%.0f%%", 100 * r / c; else print "n/a" }')
	echo "brigade, one greedy stream of $TOKENS tokens on llama-3.2-1b-Q4_K_M, $THREADS threads:" \
		"**$rate tok/s = $pct of the $ceil tok/s ceiling**."
	echo
	echo "A model that fits in the CPU's caches (tiny-llama) is not bound by memory at all:" \
		"its ceiling row only shows the arithmetic."
	echo
	echo "The triad and the decode run one after the other, and this VM's bandwidth varies" \
		"from run to run (14-19 GB/s seen), so the share is only good to about ±10 points."
	echo
	echo "Decode also reads the KV cache and pays for compute the ceiling ignores (quantized" \
		"dot products are not free on a CPU), so the share says how far from memory-bound a" \
		"build is, not a target of 100%."
} >"$RESULT"
cat "$RESULT"
