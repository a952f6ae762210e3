// Starts a real brigade process on a free port with a config written for
// the test, and gives back an official OpenAI client pointed at it.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import OpenAI from 'openai';
import { fileURLToPath } from 'node:url';

export const MODELS_DIR = process.env.BRIGADE_MODELS_DIR;
const BIN = process.env.BRIGADE_BIN;

// models: [{id, file, slots, threads, context_length, roles, chat_template, pooling, prefill_helper}]
export function writeConfig({ models = [], preload, server = {} }) {
  const dir = mkdtempSync(join(tmpdir(), 'brigade-it-'));
  const lines = ['server:', `  host: 127.0.0.1`, `  port: 0`, `  models_dir: ${MODELS_DIR}`];
  for (const [k, v] of Object.entries(server)) lines.push(`  ${k}: ${v}`);
  lines.push(`preload: [${(preload ?? models.map((m) => m.id)).join(', ')}]`);
  lines.push(models.length ? 'models:' : 'models: {}');
  for (const m of models) {
    lines.push(`  ${m.id}:`);
    lines.push(`    file: ${m.file ?? 'stories260K.gguf'}`);
    lines.push(`    context_length: ${m.context_length ?? 512}`);
    lines.push(`    threads: ${m.threads ?? 1}`);
    lines.push(`    slots: ${m.slots ?? 1}`);
    lines.push(`    roles: [${(m.roles ?? ['primary']).join(', ')}]`);
    if (m.chat_template) lines.push(`    chat_template: ${m.chat_template}`);
    if (m.pooling) lines.push(`    pooling: ${m.pooling}`);
    if (m.prefill_helper !== undefined) lines.push(`    prefill_helper: ${m.prefill_helper}`);
  }
  const path = join(dir, 'models.yaml');
  writeFileSync(path, lines.join('\n') + '\n');
  return path;
}

// providers: [{name, kind, base_url, api_key_env, models, first_byte_timeout_ms, ...}]
// fallback: {enabled, chain}; breaker: {failures, cooldown}; health: {interval, timeout}
export function writeProviders({ providers = [], fallback, breaker, health }) {
  const dir = mkdtempSync(join(tmpdir(), 'brigade-it-'));
  const lines = ['providers:'];
  if (!providers.length) lines[0] = 'providers: {}';
  for (const p of providers) {
    lines.push(`  ${p.name}:`);
    for (const [k, v] of Object.entries(p)) {
      if (k === 'name') continue;
      lines.push(`    ${k}: ${Array.isArray(v) ? `[${v.join(', ')}]` : v}`);
    }
  }
  const section = (name, obj) => {
    if (!obj) return;
    lines.push(`${name}:`);
    for (const [k, v] of Object.entries(obj)) lines.push(`  ${k}: ${Array.isArray(v) ? `[${v.join(', ')}]` : v}`);
  };
  section('fallback', fallback);
  section('breaker', breaker);
  section('health', health);
  const path = join(dir, 'providers.yaml');
  writeFileSync(path, lines.join('\n') + '\n');
  return path;
}

export async function startServer(opts) {
  const config = writeConfig(opts);
  const args = ['serve', '--config', config];
  if (opts.providers) args.push('--providers', writeProviders(opts));
  const env = { ...process.env, INFERENCE_LOG_LEVEL: process.env.BRIGADE_LOG_LEVEL ?? 'warn', ...(opts.env ?? {}) };
  const proc = spawn(BIN, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  proc.stderr.on('data', (d) => { stderr += d; if (process.env.BRIGADE_TEST_VERBOSE) process.stderr.write(d); });
  const port = await new Promise((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error(`brigade did not start:\n${stderr}`)), Number(process.env.BRIGADE_TEST_TIMEOUT_MS ?? 30000));
    proc.stdout.on('data', (d) => {
      out += d;
      const m = out.match(/listening on http:\/\/[^:]+:(\d+)/);
      if (m) { clearTimeout(timer); resolve(Number(m[1])); }
    });
    proc.on('exit', (code) => { clearTimeout(timer); reject(new Error(`brigade exited ${code}:\n${stderr}`)); });
  });
  let stopping = false;
  // A server that dies on its own is a bug: show why, whatever the test says.
  proc.on('exit', (code, sig) => {
    if (!stopping) process.stderr.write(`brigade exited unexpectedly (${code ?? sig}):\n${stderr}\n`);
  });
  const baseURL = `http://127.0.0.1:${port}`;
  const client = new OpenAI({ baseURL: `${baseURL}/v1`, apiKey: opts.apiKey ?? 'unused', maxRetries: 0, timeout: Number(process.env.BRIGADE_TEST_TIMEOUT_MS ?? 60000) });
  const server = {
    proc, port, baseURL, client,
    stderr: () => stderr,
    async stop() {
      if (proc.exitCode !== null) return proc.exitCode;
      stopping = true;
      const done = new Promise((r) => proc.on('exit', (code, sig) => r(code ?? sig)));
      proc.kill('SIGTERM');
      const code = await done;
      return code;
    },
  };
  if (opts.waitReady !== false) await waitReady(server);
  return server;
}

export async function waitReady(server, timeoutMs = 30000) {
  const t0 = Date.now();
  for (;;) {
    const r = await fetch(`${server.baseURL}/health/ready`);
    if (r.status === 200) return r.json();
    if (Date.now() - t0 > timeoutMs) throw new Error(`not ready: ${await r.text()}`);
    await new Promise((res) => setTimeout(res, 50));
  }
}

// Raw HTTP helper for the cases the SDK cannot send (bad JSON and such).
export async function raw(server, method, path, body, headers = {}) {
  const r = await fetch(`${server.baseURL}${path}`, {
    method, body, headers: { 'content-type': 'application/json', ...headers },
  });
  const text = await r.text();
  let json = null;
  try { json = JSON.parse(text); } catch { /* not JSON */ }
  return { status: r.status, headers: r.headers, text, json };
}

// Asserts the spec's error body shape and returns the error object.
export function specError(assert, res, status, code) {
  assert.equal(res.status, status, `status for ${code}: ${res.text}`);
  assert.ok(res.json && res.json.error, `error body: ${res.text}`);
  const e = res.json.error;
  assert.equal(e.code, code);
  assert.equal(typeof e.message, 'string');
  assert.ok(e.message.length > 0);
  assert.ok(e.type === 'retriable' || e.type === 'non_retriable');
  assert.equal(e.provider, 'brigade');
  assert.equal(typeof e.details, 'object');
  return e;
}

// A model the test generates itself with tools/mkmodel (random weights,
// a real shape and vocabulary); returns its absolute path.  Generated once
// per test process and shape/type/seed.
const generated = new Map();
export function generateModel({ shape = 'tiny-llama', type = 'Q8_0', seed = 42 } = {}) {
  const key = `${shape}-${type}-${seed}`;
  if (generated.has(key)) return generated.get(key);
  const bin = process.env.MKMODEL_BIN ?? fileURLToPath(new URL('../../build/mkmodel', import.meta.url));
  if (!existsSync(bin)) throw new Error(`${bin} is missing: run make build/mkmodel (or set MKMODEL_BIN)`);
  const out = join(mkdtempSync(join(tmpdir(), 'brigade-gen-')), `${key}.gguf`);
  const r = spawnSync(bin, ['--shape', shape, '--type', type, '--seed', String(seed), '--out', out], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`mkmodel failed:\n${r.stderr}`);
  generated.set(key, out);
  return out;
}
