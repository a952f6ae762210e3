// tools/mkmodel: a model the test generates itself is byte-identical for
// one seed, and brigade loads it and generates through the openai SDK.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startServer } from './helpers.mjs';

const MKMODEL = process.env.MKMODEL_BIN ?? fileURLToPath(new URL('../../build/mkmodel', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'brigade-mkmodel-'));
const sha256 = (path) => createHash('sha256').update(readFileSync(path)).digest('hex');

function mkmodel(...args) {
  assert.ok(existsSync(MKMODEL), `${MKMODEL} is missing: run make build/mkmodel (or set MKMODEL_BIN)`);
  return spawnSync(MKMODEL, args, { encoding: 'utf8' });
}

function make(name, ...extra) {
  const out = join(dir, name);
  const r = mkmodel('--shape', 'tiny-llama', '--type', 'Q8_0', '--out', out, ...extra);
  assert.equal(r.status, 0, `mkmodel failed:\n${r.stderr}`);
  return out;
}

let srv;
let model;
before(async () => {
  model = make('tiny-a.gguf');
  // An absolute 'file' is used as it is, whatever models_dir says.
  srv = await startServer({ models: [{ id: 'tiny', file: model, context_length: 512, slots: 2 }] });
});
after(async () => {
  if (srv) assert.equal(await srv.stop(), 0, 'clean exit on SIGTERM');
  rmSync(dir, { recursive: true, force: true });
});

test('one seed gives a byte-identical file; another seed another file', () => {
  const again = make('tiny-b.gguf');
  assert.equal(sha256(again), sha256(model));
  const other = make('tiny-c.gguf', '--seed', '7');
  assert.notEqual(sha256(other), sha256(model));
  assert.deepEqual(readFileSync(other).subarray(0, 4), Buffer.from('GGUF'));
});

test('mkmodel refuses bad arguments with a clear message and no file', () => {
  const out = join(dir, 'bad.gguf');
  let r = mkmodel('--shape', 'no-such-model', '--type', 'F16', '--out', out);
  assert.equal(r.status, 2);
  assert.match(r.stderr, /unknown shape 'no-such-model'/);
  r = mkmodel('--shape', 'tiny-llama', '--type', 'Q3_X', '--out', out);
  assert.equal(r.status, 2);
  assert.match(r.stderr, /unknown type 'Q3_X'/);
  r = mkmodel('--shape', 'tiny-llama', '--type', 'F16', '--out', join(dir, 'no', 'such', 'dir.gguf'));
  assert.equal(r.status, 1);
  assert.match(r.stderr, /cannot create .*No such file or directory/);
  assert.ok(!existsSync(out));
});

test('mkmodel --list names the shapes', () => {
  const r = mkmodel('--list');
  assert.equal(r.status, 0);
  for (const s of ['qwen2.5-0.5b', 'llama-3.2-1b', 'tiny-llama']) assert.match(r.stdout, new RegExp(s));
});

const msgs = [{ role: 'user', content: 'Say something.' }];

test('brigade serves the generated model: chat completion with usage', async () => {
  const r = await srv.client.chat.completions.create({ model: 'tiny', messages: msgs, max_tokens: 16, temperature: 0 });
  assert.equal(r.choices.length, 1);
  // Random weights write gibberish, but 16 tokens are never all empty.
  assert.ok(r.choices[0].message.content.length > 0);
  assert.equal(r.choices[0].finish_reason, 'length');
  assert.equal(r.usage.completion_tokens, 16);
  assert.ok(r.usage.prompt_tokens > 3, `prompt tokens ${r.usage.prompt_tokens}`);
  assert.equal(r.usage.total_tokens, r.usage.prompt_tokens + 16);
});

test('brigade streams from the generated model', async () => {
  const stream = await srv.client.chat.completions.create({
    model: 'tiny', messages: msgs, max_tokens: 24, temperature: 0, stream: true,
    stream_options: { include_usage: true },
  });
  const chunks = [];
  for await (const c of stream) chunks.push(c);
  assert.equal(chunks[0].choices[0].delta.role, 'assistant');
  const text = chunks.flatMap((c) => c.choices).map((c) => c.delta?.content ?? '').join('');
  assert.ok(text.length > 0);
  const finish = chunks.flatMap((c) => c.choices).filter((c) => c.finish_reason);
  assert.equal(finish.length, 1);
  assert.equal(finish[0].finish_reason, 'length');
  assert.equal(chunks.at(-1).usage.completion_tokens, 24);
});
