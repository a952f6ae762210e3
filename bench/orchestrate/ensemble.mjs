// bench/orchestrate/ensemble.mjs — what a 3-member ensemble costs in wall
// time next to its slowest member alone and next to the sum of the three
// (issue 4's target: ≤ 1.3 × the slowest).  Two settings, in one run:
//
//   remote: three fake OpenAI-compatible upstreams (tests/integration/
//           fakes) that stream 10 words with 20, 30 and 40 ms between
//           them — latency-bound members, as remote backends are;
//   local:  three local models on this machine's cores (stories260K under
//           two ids and the random-weight tiny Llama-2), one thread each —
//           CPU-bound members that share the machine.
//
//   local2: two of them, as many members as this machine has cores.
//
// Each request runs BENCH_REPEATS times (default 5); the median counts.
// Writes bench/results/orchestrate.md and prints it.
//
//   make bench-orchestrate
//   BRIGADE_BIN=build/brigade node bench/orchestrate/ensemble.mjs
import { writeFileSync, mkdirSync } from 'node:fs';
import { cpus } from 'node:os';
import { execSync } from 'node:child_process';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
process.env.BRIGADE_BIN ??= resolve(ROOT, 'build/brigade');
process.env.BRIGADE_MODELS_DIR ??= resolve(ROOT, '../shared/models');
const { startServer } = await import(resolve(ROOT, 'tests/integration/helpers.mjs'));
const { startFakeUpstream } = await import(resolve(ROOT, 'tests/integration/fakes/upstream.mjs'));

const REPEATS = Number(process.env.BENCH_REPEATS ?? 5);
const OUT = process.env.BENCH_OUT ?? resolve(ROOT, 'bench/results/orchestrate.md');
const msgs = [{ role: 'user', content: 'Once upon a time' }];

const median = (xs) => xs.slice().sort((a, b) => a - b)[Math.floor(xs.length / 2)];

async function timeIt(client, body) {
  const ts = [];
  for (let i = 0; i < REPEATS; i++) {
    const t0 = performance.now();
    await client.chat.completions.create(body);
    ts.push(performance.now() - t0);
  }
  return median(ts);
}

// Times each member alone, then the ensemble of all; returns a table row.
async function measure(name, srv, members, extra) {
  const body = { messages: msgs, temperature: 0, ...extra };
  await srv.client.chat.completions.create({ ...body, model: members[0] }); // warm-up
  const singles = [];
  for (const m of members) singles.push(await timeIt(srv.client, { ...body, model: m }));
  const ens = await timeIt(srv.client, { ...body, model: members[0], orchestration_mode: 'ensemble' });
  const slowest = Math.max(...singles);
  const sum = singles.reduce((a, b) => a + b, 0);
  return { name, singles, ens, slowest, sum };
}

const rows = [];
const stops = [];
try {
  // remote members
  const fakes = [];
  for (const d of [20, 30, 40]) {
    const f = await startFakeUpstream({ reply: 'word '.repeat(10).trim(), tokenDelayMs: d });
    fakes.push(f);
    stops.push(() => f.close());
  }
  const providers = fakes.map((f, i) => ({ name: `r${i}`, kind: 'openai', base_url: `${f.url}/v1`, models: ['fake-model'] }));
  const members = providers.map((p) => `${p.name}:fake-model`);
  const remote = await startServer({
    models: [],
    providers,
    waitReady: false,
    env: { INFERENCE_ORCHESTRATION_MODELS: members.join(','), INFERENCE_ENSEMBLE_SYNTHESIS_MODEL: 'none', INFERENCE_ENSEMBLE_MIN_AGREEMENT: '0' },
  });
  stops.push(() => remote.stop());
  rows.push(await measure('remote (3 fake upstreams, 10 words at 20/30/40 ms)', remote, members, {}));

  // local members
  const local = [
    { id: 'story-a', roles: ['primary'], threads: 1 },
    { id: 'story-b', roles: ['thinker'], threads: 1 },
    { id: 'tiny', file: 'llama-2-tiny-random.gguf', roles: ['fast'], threads: 1 },
  ];
  const local3 = await startServer({
    models: local,
    env: { INFERENCE_ORCHESTRATION_MODELS: local.map((m) => m.id).join(','), INFERENCE_ENSEMBLE_SYNTHESIS_MODEL: 'none', INFERENCE_ENSEMBLE_MIN_AGREEMENT: '0' },
  });
  stops.push(() => local3.stop());
  rows.push(await measure('local, 3 members (stories260K ×2 + tiny, 1 thread each, 200 tokens)', local3, local.map((m) => m.id), { max_tokens: 200 }));
  // As many local members as cores: what overlap the machine allows.
  const local2 = await startServer({
    models: [local[0], local[2]],
    env: { INFERENCE_ORCHESTRATION_MODELS: 'story-a,tiny', INFERENCE_ENSEMBLE_SYNTHESIS_MODEL: 'none', INFERENCE_ENSEMBLE_MIN_AGREEMENT: '0' },
  });
  stops.push(() => local2.stop());
  rows.push(await measure('local, 2 members (stories260K + tiny, 1 thread each, 200 tokens)', local2, ['story-a', 'tiny'], { max_tokens: 200 }));
} finally {
  for (const s of stops.reverse()) await s();
}

const f1 = (x) => x.toFixed(1);
const f2 = (x) => x.toFixed(2);
let commit = 'unknown';
try { commit = execSync('git rev-parse --short HEAD', { cwd: ROOT }).toString().trim(); } catch { /* not a checkout */ }
const lines = [
  '# Orchestration benchmark: a 3-member ensemble against its members',
  '',
  `- date: ${new Date().toISOString().replace('T', ' ').slice(0, 19)} UTC`,
  `- machine: ${cpus().length} CPUs, ${cpus()[0]?.model ?? 'unknown CPU'}`,
  `- brigade: commit ${commit}, \`${process.env.BRIGADE_BIN}\``,
  `- each request ${REPEATS} times, median; temperature 0; ensemble with \`weighted_consensus\`, no synthesis (the reduction itself is a few µs)`,
  '',
  '| members | member alone, ms (each) | slowest alone, ms | sum, ms | ensemble, ms | ensemble ÷ slowest | ensemble ÷ sum |',
  '|---|---|---:|---:|---:|---:|---:|',
  ...rows.map((r) => `| ${r.name} | ${r.singles.map(f1).join(' / ')} | ${f1(r.slowest)} | ${f1(r.sum)} | ${f1(r.ens)} | **${f2(r.ens / r.slowest)}** | ${f2(r.ens / r.sum)} |`),
  '',
  'Target: ensemble ≤ 1.3 × the slowest member. Remote members wait on the network and overlap fully.',
  'Every ensemble member also reads the spec\'s Current Position block (the trajectory), ~120 prompt tokens the member alone does not: part of what orchestration costs.',
  `Local members share ${cpus().length} cores: three decoders at once can only overlap as far as there are cores for them, so on a machine with fewer cores than members the ratio to the slowest grows toward (members ÷ cores) — the parallelism is real, the cores are not there.`,
  '',
];
mkdirSync(dirname(OUT), { recursive: true });
writeFileSync(OUT, lines.join('\n'));
console.log(lines.join('\n'));
// The SDK's keep-alive pool would hold the process open for its idle
// timeout; everything that needed stopping has stopped.
process.exit(0);
