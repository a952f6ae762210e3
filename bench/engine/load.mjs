// bench/engine/load.mjs — the load side of `make bench-engine`: one
// workload against one OpenAI-compatible server per call, a JSON line of
// results on stdout.  run.sh starts and stops the servers, reads their
// memory, and calls `report` at the end to write the table.
//
//   node load.mjs SUBCOMMAND --port P [--model M] [options]
//     warmup                         one short completion
//     single      --tokens N         one stream: decode tokens/s without TTFT
//     concurrent  --streams K --tokens N
//                                    K streams at once: aggregate tokens/s
//     sysprompt   --requests R --prompt-tokens T --tokens N
//                                    R requests sharing a T-word system
//                                    prompt, one burst: median TTFT
//     nway        --n K --tokens N   one prompt with n=K vs n=1 (wall time)
//     gap         --alone G --prompt-tokens T --tokens N
//                                    a stream's inter-token gaps alone, then
//                                    while a T-word prompt is admitted
//   node load.mjs gguf FILE          the GGUF's shape (for the KV bytes)
//   node load.mjs freeport           a free TCP port on 127.0.0.1
//   node load.mjs report DIR         the markdown report from DIR/*.json
//
// Why Node and node:http, not fetch or C: the work here is parsing event
// streams and timestamping each chunk, at most a few hundred chunks a
// second, which costs Node microseconds; node:http (rather than global
// fetch) because fetch's built-in client (undici) gives up on a response
// whose headers take more than 300 s, and a cold burst on a 2-core machine
// can wait that long; no npm package either way.
//
// Every request carries the same body for both servers: a system message
// (so both render the same chat-format prompt: without one, a Qwen
// template adds its own default system prompt and a server without the
// template does not), temperature 0, "ignore_eos": true (llama-server then
// generates exactly max_tokens; brigade ignores the field) and
// stream_options.include_usage, so every count below is the server's own
// usage.completion_tokens, not a count of chunks.
import http from 'node:http';
import net from 'node:net';
import { openSync, readSync, closeSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';

const now = () => Number(process.hrtime.bigint()) / 1e6; // ms

function args(argv) {
	const o = { _: [] };
	for (let i = 0; i < argv.length; i++) {
		if (argv[i].startsWith('--')) o[argv[i].slice(2)] = argv[++i];
		else o._.push(argv[i]);
	}
	return o;
}

const A = args(process.argv.slice(2));
const PORT = Number(A.port ?? 0);
const MODEL = A.model ?? 'm';
const agent = new http.Agent({ keepAlive: true, maxSockets: Infinity });

// ---- prompts -----------------------------------------------------------------
// Common English words, each one token after a space in Qwen's and Llama 3's
// BPE vocabularies, so a text of W of them is about W tokens (the servers'
// usage.prompt_tokens in the results says exactly).
const WORDS = ('time year people way day man thing woman life child world school state family ' +
	'student group country problem hand part place case week company system program question work ' +
	'government number night point home water room mother area money story fact month lot right ' +
	'study book eye job word business issue side kind head house service friend father power hour ' +
	'game line end member law car city community name president team minute idea kid body ' +
	'information back parent face others level office door health person art war history party ' +
	'result change morning reason research girl guy moment air teacher force education').split(' ');

function words(n, seed) {
	let x = seed >>> 0 || 1;
	const out = [];
	for (let i = 0; i < n; i++) {
		x ^= x << 13; x >>>= 0; x ^= x >>> 17; x ^= x << 5; x >>>= 0;
		out.push(WORDS[x % WORDS.length]);
	}
	return out.join(' ');
}

const SYSTEM = 'You are a helpful assistant.';
const msgs = (user, system = SYSTEM) => [{ role: 'system', content: system }, { role: 'user', content: user }];

// ---- one request ---------------------------------------------------------------
// Sends body to /v1/chat/completions.  Streaming: resolves with the send
// time, every content chunk's arrival time per choice, and the usage;
// non-streaming: with the send and end times and the parsed answer.
// opts.onChunk(t, index) is called at each content chunk; opts.signal aborts.
function chat(body, opts = {}) {
	return new Promise((resolve, reject) => {
		const data = JSON.stringify({ model: MODEL, temperature: 0, ignore_eos: true, ...body });
		const r = { tSend: now(), tEnd: 0, chunks: [], usage: null, status: 0, aborted: false };
		const req = http.request({ host: '127.0.0.1', port: PORT, path: '/v1/chat/completions', method: 'POST',
			agent, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(data) } }, (res) => {
			r.status = res.statusCode;
			res.setEncoding('utf8');
			let rest = '';
			let whole = '';
			res.on('data', (s) => {
				const t = now();
				if (!body.stream || res.statusCode !== 200) { whole += s; return; }
				const lines = (rest + s).split('\n');
				rest = lines.pop();
				for (const l of lines) {
					if (!l.startsWith('data: {')) continue;
					const c = JSON.parse(l.slice(6));
					if (c.usage) r.usage = c.usage;
					for (const ch of c.choices ?? []) {
						const txt = ch.delta?.content;
						if (typeof txt === 'string' && txt.length > 0) {
							const i = ch.index ?? 0;
							(r.chunks[i] ??= []).push(t);
							opts.onChunk?.(t, i);
						}
					}
				}
			});
			res.on('end', () => {
				r.tEnd = now();
				if (res.statusCode !== 200) return reject(new Error(`HTTP ${res.statusCode}: ${whole.slice(0, 500)}`));
				if (!body.stream) {
					r.json = JSON.parse(whole);
					r.usage = r.json.usage;
				}
				resolve(r);
			});
			res.on('error', (e) => (r.aborted ? resolve(r) : reject(e)));
			res.on('aborted', () => { if (r.aborted) { r.tEnd = now(); resolve(r); } });
		});
		req.on('error', (e) => (r.aborted ? resolve(r) : reject(e)));
		opts.signal?.addEventListener('abort', () => { r.aborted = true; r.tEnd = now(); req.destroy(); resolve(r); });
		req.end(data);
	});
}

const stream = (user, maxTokens, extra = {}) => ({
	messages: msgs(user), max_tokens: maxTokens, stream: true, stream_options: { include_usage: true }, ...extra,
});

function pct(xs, p) {
	if (xs.length === 0) return null;
	const s = xs.slice().sort((a, b) => a - b);
	return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))];
}
const median = (xs) => pct(xs, 50);
const gapsOf = (ts) => ts.slice(1).map((t, i) => t - ts[i]);
const r2 = (x) => (x == null ? null : Math.round(x * 100) / 100);

// ---- workloads ----------------------------------------------------------------
async function warmup() {
	const r = await chat(stream('Say hello.', 8));
	return { completion_tokens: r.usage?.completion_tokens, ms: r2(r.tEnd - r.tSend) };
}

async function single() {
	const n = Number(A.tokens);
	const r = await chat(stream('Tell me a long story about a river.', n));
	const ts = r.chunks[0] ?? [];
	const toks = r.usage?.completion_tokens ?? ts.length;
	return {
		tokens: toks, chunks: ts.length, prompt_tokens: r.usage?.prompt_tokens,
		ttft_ms: r2(ts[0] - r.tSend),
		decode_tps: r2((toks - 1) / ((ts.at(-1) - ts[0]) / 1000)),
	};
}

async function concurrent() {
	const k = Number(A.streams), n = Number(A.tokens);
	const t0 = now();
	const rs = await Promise.all(Array.from({ length: k }, (_, i) =>
		chat(stream(`Story number ${i}: tell me about the ${WORDS[i % WORDS.length]}.`, n))));
	const t1 = now();
	const toks = rs.map((r) => r.usage?.completion_tokens ?? (r.chunks[0]?.length ?? 0));
	const total = toks.reduce((a, b) => a + b, 0);
	const firsts = rs.map((r) => r.chunks[0]?.[0]).filter((x) => x != null);
	const lasts = rs.map((r) => r.chunks[0]?.at(-1)).filter((x) => x != null);
	return {
		streams: k, tokens_total: total, tokens_min: Math.min(...toks), tokens_max: Math.max(...toks),
		wall_s: r2((t1 - t0) / 1000),
		aggregate_tps: r2(total / ((t1 - t0) / 1000)),
		// the same tokens over the span from the first token of any stream to the last
		decode_span_tps: r2(total / ((Math.max(...lasts) - Math.min(...firsts)) / 1000)),
		ttft_median_ms: r2(median(rs.map((r) => r.chunks[0]?.[0] - r.tSend))),
	};
}

async function sysprompt() {
	const k = Number(A.requests), w = Number(A['prompt-tokens']), n = Number(A.tokens);
	// A system prompt no earlier request has used (the seed is the time), so
	// neither server finds it cached: the burst itself must share it.
	const seed = Number(A.seed ?? Date.now() % 1e9);
	const system = `${SYSTEM} Reference notes ${seed}: ${words(w, seed)}`;
	const rs = await Promise.all(Array.from({ length: k }, (_, i) => {
		const q = `Question ${i + 1}: what is a ${WORDS[(i * 7) % WORDS.length]}?`;
		return chat({ ...stream(q, n), messages: msgs(q, system) });
	}));
	const ttfts = rs.map((r) => r.chunks[0]?.[0] - r.tSend);
	return {
		requests: k, prompt_tokens: rs[0].usage?.prompt_tokens,
		ttft_median_ms: r2(median(ttfts)), ttft_min_ms: r2(Math.min(...ttfts)), ttft_max_ms: r2(Math.max(...ttfts)),
		tokens: rs.map((r) => r.usage?.completion_tokens ?? 0).reduce((a, b) => a + b, 0),
	};
}

async function nway() {
	const k = Number(A.n), n = Number(A.tokens);
	// Different prompts (never cached), the same length, non-streaming.
	const once = async (nn, tag) => {
		const r = await chat({ messages: msgs(`Attempt ${tag}: write a poem about the sea.`), max_tokens: n, n: nn });
		return { ms: r.tEnd - r.tSend, choices: r.json.choices.length, tokens: r.usage?.completion_tokens };
	};
	const one = await once(1, 'alpha');
	const many = await once(k, 'omega');
	return {
		n: k, one_ms: r2(one.ms), n_ms: r2(many.ms), ratio: r2(many.ms / one.ms),
		one_tokens: one.tokens, n_tokens: many.tokens, n_choices: many.choices,
	};
}

async function gap() {
	const alone = Number(A.alone), w = Number(A['prompt-tokens']), n = Number(A.tokens);
	const lead = 20;
	const ac = new AbortController();
	const ts = [];
	let wake = null;
	const waitFor = (cond) => new Promise((res) => { wake = () => { if (cond()) { wake = null; res(); } }; wake(); });
	const s = chat(stream('Tell me a very long story about the mountains.', n), {
		signal: ac.signal, onChunk: (t) => { ts.push(t); wake?.(); },
	});
	let sDone = false;
	s.then(() => { sDone = true; wake?.(); }, () => { sDone = true; wake?.(); });
	await waitFor(() => sDone || ts.length >= lead + alone + 1);
	const aloneGaps = gapsOf(ts.slice(lead));
	// The 4,000-word prompt: distinct from everything before (seeded by the time).
	const seed = Date.now() % 1e9;
	const big = chat({ messages: msgs(`Summarise these notes ${seed}: ${words(w, seed)}`), max_tokens: 1 });
	const tSend = now();
	const b = await big;
	const tDone = now();
	// one more token of the stream, so the gap that spans tDone is counted
	const nAt = ts.length;
	let timer;
	await Promise.race([waitFor(() => sDone || ts.length > nAt), new Promise((res) => { timer = setTimeout(res, 30000); })]);
	clearTimeout(timer);
	const streamEnded = sDone;
	ac.abort();
	await s.catch(() => {});
	// Gaps that end after the send and start before the big request finished.
	const adm = [], at = [];
	for (let i = 1; i < ts.length; i++) {
		if (ts[i] > tSend && ts[i - 1] < tDone) { adm.push(ts[i] - ts[i - 1]); at.push(ts[i - 1] - tSend); }
	}
	// BENCH_GAP_TRACE=FILE: every admitted gap as [start after the send, length], ms.
	if (process.env.BENCH_GAP_TRACE) writeFileSync(process.env.BENCH_GAP_TRACE, JSON.stringify(adm.map((g, i) => [r2(at[i]), r2(g)])));
	// The five longest admitted gaps as [start after the send, length], ms: where the stalls were.
	const worst = adm.map((g, i) => [r2(at[i]), r2(g)]).sort((x, y) => y[1] - x[1]).slice(0, 5);
	const st = (g) => ({ n: g.length, p50: r2(pct(g, 50)), p99: r2(pct(g, 99)), max: r2(g.length ? Math.max(...g) : null) });
	const a = st(aloneGaps), d = st(adm);
	return {
		alone: a, admit: d, ratio_p99: r2(d.p99 / a.p99),
		prompt_tokens: b.usage?.prompt_tokens, admit_s: r2((tDone - tSend) / 1000),
		admit_worst: worst, stream_tokens: ts.length, stream_ended_early: streamEnded && ts.length < n,
		note: streamEnded ? 'the stream ended before the prompt was admitted' : undefined,
	};
}

// ---- GGUF header -> shape ------------------------------------------------------------
function gguf(file) {
	const fd = openSync(file, 'r');
	const buf = Buffer.alloc(64 << 20);
	const len = readSync(fd, buf, 0, buf.length, 0);
	closeSync(fd);
	let off = 0;
	const need = (k) => { if (off + k > len) throw new Error('GGUF metadata larger than 64 MiB'); };
	const u32 = () => { need(4); const v = buf.readUInt32LE(off); off += 4; return v; };
	const u64 = () => { need(8); const v = Number(buf.readBigUInt64LE(off)); off += 8; return v; };
	const str = () => { const n = u64(); need(n); const s = buf.toString('utf8', off, off + n); off += n; return s; };
	const SIZES = { 0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8 };
	const val = (t) => {
		switch (t) {
		case 4: return u32();
		case 5: { need(4); const v = buf.readInt32LE(off); off += 4; return v; }
		case 6: { need(4); const v = buf.readFloatLE(off); off += 4; return v; }
		case 10: return u64();
		case 8: return str();
		case 9: {
			const et = u32(), n = u64();
			if (et === 8) { for (let i = 0; i < n; i++) str(); return `[${n} strings]`; }
			if (et === 9) throw new Error('nested GGUF arrays');
			need(n * SIZES[et]); off += n * SIZES[et]; return `[${n}]`;
		}
		default: { const n = SIZES[t]; need(n); const v = n === 1 ? buf[off] : n === 2 ? buf.readUInt16LE(off) : Number(buf.readBigInt64LE(off)); off += n; return v; }
		}
	};
	if (buf.toString('latin1', 0, 4) !== 'GGUF') throw new Error(`${file}: not a GGUF file`);
	off = 4;
	u32(); u64();
	const nkv = u64();
	const kv = {};
	for (let i = 0; i < nkv; i++) { const k = str(); kv[k] = val(u32()); }
	const arch = kv['general.architecture'];
	const g = (k) => kv[`${arch}.${k}`];
	const nHead = g('attention.head_count'), nHeadKv = g('attention.head_count_kv') ?? nHead;
	const nEmbd = g('embedding_length');
	const kLen = g('attention.key_length') ?? nEmbd / nHead, vLen = g('attention.value_length') ?? nEmbd / nHead;
	// llama_ftype numbers of the types mkmodel writes
	const FTYPES = { 0: 'F32', 1: 'F16', 2: 'Q4_0', 7: 'Q8_0', 15: 'Q4_K_M' };
	return {
		arch, name: kv['general.name'], file_type: FTYPES[kv['general.file_type']] ?? kv['general.file_type'],
		n_layer: g('block_count'), n_embd: nEmbd, n_ff: g('feed_forward_length'), n_head: nHead, n_head_kv: nHeadKv,
		n_embd_k_gqa: kLen * nHeadKv, n_embd_v_gqa: vLen * nHeadKv, n_ctx_train: g('context_length'),
		has_chat_template: 'tokenizer.chat_template' in kv,
	};
}

function freeport() {
	return new Promise((res) => {
		const s = net.createServer();
		s.listen(0, '127.0.0.1', () => { const p = s.address().port; s.close(() => res(p)); });
	});
}

// ---- the report ---------------------------------------------------------------------
function report(dir) {
	// run.sh leaves one file per fact in DIR/meta (a string, or JSON where it parses)
	const meta = {};
	for (const f of readdirSync(`${dir}/meta`)) {
		const v = readFileSync(`${dir}/meta/${f}`, 'utf8').replace(/\n$/, '');
		try { meta[f] = /^[[{0-9]/.test(v) ? JSON.parse(v) : v; } catch { meta[f] = v; }
	}
	const B = {}, L = {};
	for (const f of readdirSync(dir)) {
		const m = /^(brigade|llama)-(.*)\.json$/.exec(f);
		if (m) (m[1] === 'brigade' ? B : L)[m[2]] = JSON.parse(readFileSync(`${dir}/${f}`, 'utf8'));
	}
	const fmt = (x, d = 1) => (x == null || Number.isNaN(x) ? 'n/a' : Number(x).toFixed(d));
	const rows = [];
	const cmp = (higher) => (r, t) => (r == null || Number.isNaN(r) ? '—' : (higher ? r >= t : r <= t) ? '**yes**' : '**no**');
	// workload, brigade cell, llama cell, ratio, target text, met?
	const add = (w, b, l, ratio, target, met) => rows.push([w, b, l, ratio == null ? '—' : fmt(ratio, 2), target, met]);
	const q = meta.sizes;

	if (B.single && L.single) {
		const r = B.single.decode_tps / L.single.decode_tps;
		add(`one stream, ${q.single} tokens: decode tok/s (TTFT excluded)`,
			`${fmt(B.single.decode_tps)} (${B.single.tokens} tok)`, `${fmt(L.single.decode_tps)} (${L.single.tokens} tok)`,
			r, '≥ 1.00', cmp(true)(r, 1.0));
	}
	for (const k of ['c8', 'c32']) {
		if (!B[k] || !L[k]) continue;
		const r = B[k].aggregate_tps / L[k].aggregate_tps;
		add(`${B[k].streams} concurrent streams × ${q[k]} tokens: aggregate tok/s`,
			`${fmt(B[k].aggregate_tps)} (${B[k].tokens_total} tok)`, `${fmt(L[k].aggregate_tps)} (${L[k].tokens_total} tok)`,
			r, '≥ 1.10', cmp(true)(r, 1.1));
	}
	if (B.sys && L.sys) {
		const r = B.sys.ttft_median_ms / L.sys.ttft_median_ms;
		add(`${B.sys.requests} requests sharing a ${q.sys_words}-word system prompt (${B.sys.prompt_tokens} / ${L.sys.prompt_tokens} prompt tokens), one burst: median TTFT ms`,
			fmt(B.sys.ttft_median_ms, 0), fmt(L.sys.ttft_median_ms, 0), r, '≤ 0.80', cmp(false)(r, 0.8));
	}
	if (B.nway) {
		// The target is brigade's own; llama-server's (its `n` alias of
		// n_cmpl) is shown beside it for what this CPU allows.
		const nw = (x) => (x ? `${fmt(x.n_ms, 0)} ms vs ${fmt(x.one_ms, 0)} ms = ${fmt(x.ratio, 2)}× (${x.n_choices} choices)` : '—');
		add(`n=${B.nway.n} vs n=1, ${q.nway} tokens each: wall time ratio (target on brigade's own ratio)`,
			nw(B.nway), nw(L.nway), L.nway ? B.nway.ratio / L.nway.ratio : null,
			'≤ 1.6×', cmp(false)(B.nway.ratio, 1.6));
	}
	if (B.gap && L.gap) {
		const cell = (g) => `${fmt(g.ratio_p99, 1)}× (p99 ${fmt(g.admit.p99, 0)} ms vs ${fmt(g.alone.p99, 0)} ms alone)`;
		add(`a stream's inter-token gap while a ${q.gap_words}-word prompt (${B.gap.prompt_tokens} / ${L.gap.prompt_tokens} tokens) is admitted: p99 ÷ p99 alone`,
			cell(B.gap), cell(L.gap), B.gap.ratio_p99 / L.gap.ratio_p99, '≤ 3× (brigade)', cmp(false)(B.gap.ratio_p99, 3));
	}
	const rssB = B['rss-warm'] && { warm: B['rss-warm'], end: B['rss-end'] };
	const rssL = L['rss-warm'] && { warm: L['rss-warm'], end: L['rss-end'] };
	if (B['rss-idle']) {
		const mb = (B['rss-idle'].rss_kib * 1024) / 1e6;
		add('resident memory, idle brigade, no model loaded: MB (VmRSS, 10^6 bytes)', fmt(mb, 1), '—', null, '≤ 8 MB', cmp(false)(mb, 8));
	}
	const over = (s) => (s == null ? null : (s.rss_kib * 1024 - meta.weights_bytes - meta.kv_bytes) / (meta.weights_bytes + meta.kv_bytes));
	if (rssB && rssL) {
		const ob = over(rssB.warm), ol = over(rssL.warm);
		add('memory beyond weights + KV, model loaded, after warm-up: (RSS − weights − KV) ÷ (weights + KV)',
			`${fmt(100 * ob, 1)}% (RSS ${fmt(rssB.warm.rss_kib / 1024, 0)} MiB)`,
			`${fmt(100 * ol, 1)}% (RSS ${fmt(rssL.warm.rss_kib / 1024, 0)} MiB)`,
			null, '≤ 10% (both)', ob <= 0.1 && ol <= 0.1 ? '**yes**' : `**no**${ob <= 0.1 ? ' (brigade yes)' : ''}`);
	}

	const out = [];
	const p = (s = '') => out.push(s);
	p('# Engine benchmark: brigade vs llama-server, side by side');
	p();
	p(`- date: ${meta.date}`);
	p(`- machine: ${meta.machine}`);
	const sh = meta.shape;
	p(`- model: \`${meta.model}\`, ${meta.weights_bytes} bytes (${fmt(meta.weights_bytes / 1048576, 1)} MiB), ${sh.file_type}, ${sh.arch}: ` +
		`${sh.n_layer} layers, n_embd ${sh.n_embd}, n_ff ${sh.n_ff}, ${sh.n_head}/${sh.n_head_kv} heads (\`${sh.name}\`)`);
	p(`- brigade: \`${meta.brigade_version}\` (git describe), binary \`${meta.brigade_bin}\`, linked against the prebuilt llama.cpp libraries of deps/llama-bin (runtime CPU dispatch)`);
	p(`- llama-server: llama.cpp ${meta.llama_commit}, the same release brigade embeds, built by bench/engine/build-peer.sh (${meta.peer_flags}); \`llama-server --version\`: ${meta.llama_version}`);
	p(`- run: ${meta.mode}; servers started one at a time (llama-server first, then brigade), never both under load; total ${meta.total_s} s`);
	p();
	// What else used the CPU while a workload ran (both cores are the servers').
	const OTHER_MAX = 0.2;
	const cpuRows = [];
	for (const [name, S] of [['llama-server', L], ['brigade', B]]) {
		for (const [k, v] of Object.entries(S)) {
			if (!k.endsWith('.cpu')) continue;
			cpuRows.push({ name, w: k.slice(0, -4), ...v });
		}
	}
	const ORDER = ['warmup', 'single', 'c8', 'c32', 'sys', 'gap', 'nway'];
	cpuRows.sort((a, b) => ORDER.indexOf(a.w) - ORDER.indexOf(b.w));
	const disturbed = cpuRows.filter((c) => c.other_cores + c.steal_cores > OTHER_MAX);
	if (disturbed.length) {
		p(`**Disturbed run:** other work used more than ${OTHER_MAX} of a core on average (other + stolen) during ` +
			disturbed.map((c) => `${c.name} ${c.w} (${fmt(c.other_cores + c.steal_cores, 2)})`).join(', ') +
			'. Those rows measure the machine\'s other load as much as the servers; rerun on a quiet machine.');
		p();
	}
	p(`brigade's command line: \`${meta.brigade_cmd}\`, with this models.yaml:`);
	p();
	p('```yaml');
	p(meta.brigade_config.trimEnd());
	p('```');
	p();
	p('llama-server\'s command line:');
	p();
	p('```sh');
	p(meta.llama_cmd);
	p('```');
	p();
	p('| workload | brigade | llama-server | ratio (brigade ÷ llama-server) | target | met? |');
	p('|---|---:|---:|---:|---|---|');
	for (const r of rows) p(`| ${r.join(' | ')} |`);
	p();
	p('Details:');
	p();
	const gapLine = (name, g) => `- ${name}, gap: alone ${g.alone.n} gaps p50/p99/max ${fmt(g.alone.p50)}/${fmt(g.alone.p99)}/${fmt(g.alone.max)} ms; ` +
		`while the prompt is admitted ${g.admit.n} gaps p50/p99/max ${fmt(g.admit.p50)}/${fmt(g.admit.p99)}/${fmt(g.admit.max)} ms; ` +
		`the ${g.prompt_tokens}-token prompt took ${fmt(g.admit_s, 1)} s to admit (send to its answer); ` +
		`longest gaps [ms after the send, ms]: ${JSON.stringify(g.admit_worst ?? [])}${g.note ? `; ${g.note}` : ''}`;
	if (B.gap) p(gapLine('brigade', B.gap));
	if (L.gap) p(gapLine('llama-server', L.gap));
	for (const [name, S] of [['brigade', B], ['llama-server', L]]) {
		const parts = [];
		if (S.single) parts.push(`one stream: TTFT ${fmt(S.single.ttft_ms, 0)} ms, ${S.single.prompt_tokens} prompt tokens`);
		for (const k of ['c8', 'c32']) if (S[k]) parts.push(`${S[k].streams} streams: ${S[k].tokens_min}-${S[k].tokens_max} tokens each, wall ${fmt(S[k].wall_s, 1)} s, median TTFT ${fmt(S[k].ttft_median_ms, 0)} ms, ${fmt(S[k].decode_span_tps)} tok/s from first to last token`);
		if (S.sys) parts.push(`system-prompt burst: TTFT min/median/max ${fmt(S.sys.ttft_min_ms, 0)}/${fmt(S.sys.ttft_median_ms, 0)}/${fmt(S.sys.ttft_max_ms, 0)} ms`);
		if (S.nway) parts.push(`n=${S.nway.n}: ${S.nway.n_choices} choices, ${S.nway.n_tokens} tokens in all vs ${S.nway.one_tokens}`);
		if (parts.length) p(`- ${name}: ${parts.join('; ')}`);
	}
	const rssLine = (name, s) => `- ${name} memory: after warm-up VmRSS ${fmt(s.warm.rss_kib / 1024, 1)} MiB (anonymous ${fmt(s.warm.anon_kib / 1024, 1)}, file ${fmt(s.warm.file_kib / 1024, 1)}); ` +
		`after every workload ${fmt(s.end.rss_kib / 1024, 1)} MiB (anonymous ${fmt(s.end.anon_kib / 1024, 1)}, file ${fmt(s.end.file_kib / 1024, 1)}), overhead then ${fmt(100 * over(s.end), 1)}%`;
	if (B['rss-idle']) {
		const i = B['rss-idle'];
		p(`- brigade idle memory: VmRSS ${fmt(i.rss_kib / 1024, 1)} MiB = anonymous ${fmt(i.anon_kib / 1024, 1)} + file ${fmt(i.file_kib / 1024, 1)} (mapped code: brigade, libc, jansson, libyaml and the rest; llama.cpp is dlopened at the first load)`);
	}
	if (rssB) p(rssLine('brigade', rssB));
	if (rssL) p(rssLine('llama-server', rssL));
	for (const name of ['llama-server', 'brigade']) {
		const cs = cpuRows.filter((c) => c.name === name);
		if (cs.length) {
			p(`- ${name}, CPU cores used on average during each workload (server / load generator / everything else / stolen): ` +
				cs.map((c) => `${c.w} ${fmt(c.server_cores, 2)}/${fmt(c.load_cores, 2)}/${fmt(c.other_cores, 2)}/${fmt(c.steal_cores, 2)}`).join(', '));
		}
	}
	p(`- weights = the GGUF file's size, ${fmt(meta.weights_bytes / 1048576, 1)} MiB; KV = n_layer × cells (slots × context per slot, rounded up to 256) × (n_embd_k_gqa + n_embd_v_gqa) × 2 bytes (F16) = ` +
		`${meta.kv_formula} = ${fmt(meta.kv_bytes / 1048576, 1)} MiB`);
	if (meta.llama_slots_log) p(`- llama-server's log: \`${meta.llama_slots_log}\``);
	if (meta.brigade_slots_log) p(`- brigade's log: \`${meta.brigade_slots_log}\``);
	p();
	p('How each number is taken (bench/engine/README.md has more):');
	p();
	p('- tokens are the servers\' own `usage.completion_tokens`; every request says `"ignore_eos": true`, which llama-server honours (exactly max_tokens) and brigade ignores, ' +
		'so a brigade count below max_tokens means its greedy text reached an end-of-text token; rates are per counted token either way.');
	p('- one stream: (tokens − 1) ÷ (last content chunk − first content chunk). Concurrent: every stream\'s tokens ÷ the wall time from sending the burst to the last stream\'s end (prefill included).');
	p('- TTFT: from sending a request to its first non-empty content chunk. The system prompt is new to both servers (seeded by the clock): the burst itself must share it.');
	p('- gap: the time between consecutive content chunks of one stream; "admitted" = the gaps that end after the long prompt was sent and begin before its answer came.');
	p('- memory: VmRSS of the server process from /proc/PID/status (weights are mmapped, so their resident pages are counted as file pages).');
	p();
	p('Memory bandwidth and the decode ceiling it implies for this model: [bench/results/ceiling.md](ceiling.md) ' +
		`(not rerun here${meta.ceiling && B.single ? `; its ceiling for this model is ${meta.ceiling} tok/s, so one stream above decodes at ` +
		`${fmt((100 * B.single.decode_tps) / meta.ceiling, 0)}% of it in brigade and ${fmt((100 * L.single.decode_tps) / meta.ceiling, 0)}% in llama-server` : ''}).`);
	p();
	p('This is a 2-core VM shared with other work; run it twice and compare before trusting a ratio near its target.');
	return out.join('\n') + '\n';
}

// ---- main --------------------------------------------------------------------------
const cmd = A._[0];
const WORK = { warmup, single, concurrent, sysprompt, nway, gap };
try {
	if (cmd === 'gguf') console.log(JSON.stringify(gguf(A._[1])));
	else if (cmd === 'freeport') console.log(await freeport());
	else if (cmd === 'report') process.stdout.write(report(A._[1]));
	else if (WORK[cmd]) console.log(JSON.stringify(await WORK[cmd]()));
	else { console.error(`load.mjs: unknown subcommand '${cmd}'`); process.exit(2); }
	agent.destroy();
} catch (e) {
	console.error(`load.mjs ${cmd}: ${e.stack ?? e}`);
	process.exit(1);
}
