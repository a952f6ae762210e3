// /v1/models, load/unload and the health checks.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, openSync, closeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startServer, raw, specError, waitReady } from './helpers.mjs';

test('models list, get, load, unload and readiness', async (t) => {
  const srv = await startServer({
    models: [{ id: 'stories', slots: 2, context_length: 256, roles: ['primary', 'fast'] },
             { id: 'tiny', file: 'llama-2-tiny-random.gguf', roles: ['coder'] }],
    preload: ['stories'],
  });
  t.after(() => srv.stop());
  const list = await srv.client.models.list();
  const ids = list.data.map((m) => m.id);
  assert.deepEqual(ids, ['stories', 'tiny']);
  const s = list.data[0];
  assert.equal(s.object, 'model');
  assert.equal(s.owned_by, 'brigade');
  assert.equal(s.status, 'loaded');
  assert.equal(s.context_length, 256);
  assert.deepEqual(s.roles, ['primary', 'fast']);
  assert.ok(s.memory_mb >= 1);
  assert.equal(list.data[1].status, 'available');

  const tiny = await srv.client.models.retrieve('tiny');
  assert.equal(tiny.id, 'tiny');
  assert.equal(tiny.status, 'available');

  const ready = await (await fetch(`${srv.baseURL}/health/ready`)).json();
  assert.equal(ready.status, 'ready');
  assert.deepEqual(ready.loaded_models, ['stories']);

  const loaded = await raw(srv, 'POST', '/v1/models/tiny/load');
  assert.equal(loaded.status, 200);
  assert.equal(loaded.json.status, 'loaded');
  assert.equal((await srv.client.models.retrieve('tiny')).status, 'loaded');

  const unloaded = await raw(srv, 'POST', '/v1/models/stories/unload');
  assert.equal(unloaded.status, 200);
  assert.equal(unloaded.json.status, 'available');
  const again = await raw(srv, 'POST', '/v1/models/stories/unload');
  assert.equal(again.status, 200, 'unload is idempotent');

  // A request for an unloaded model loads it on demand.
  const r = await srv.client.chat.completions.create({ model: 'stories', messages: [{ role: 'user', content: 'Hi' }], max_tokens: 3 });
  assert.equal(r.usage.completion_tokens, 3);
  assert.equal((await srv.client.models.retrieve('stories')).status, 'loaded');

  specError(assert, await raw(srv, 'GET', '/v1/models/nope'), 404, 'MODEL_NOT_FOUND');
  specError(assert, await raw(srv, 'POST', '/v1/models/nope/load'), 404, 'MODEL_NOT_FOUND');
  specError(assert, await raw(srv, 'POST', '/v1/models/nope/unload'), 404, 'MODEL_NOT_FOUND');
});

test('health is ok at once; ready is 503 with progress while a model loads', async (t) => {
  // A FIFO as the model file: loading blocks on it until we open the other end.
  const dir = mkdtempSync(join(tmpdir(), 'brigade-fifo-'));
  const fifo = join(dir, 'slow.gguf');
  execFileSync('mkfifo', [fifo]);
  const srv = await startServer({ models: [{ id: 'slow', file: fifo }], waitReady: false });
  t.after(() => srv.stop());
  const health = await raw(srv, 'GET', '/health');
  assert.equal(health.status, 200);
  assert.deepEqual(health.json, { status: 'ok' });
  const nr = await raw(srv, 'GET', '/health/ready');
  assert.equal(nr.status, 503);
  assert.equal(nr.json.status, 'not_ready');
  assert.equal(nr.json.reason, 'Models still loading');
  assert.equal(nr.json.progress, '0/1');
  assert.equal((await srv.client.models.retrieve('slow')).status, 'loading');
  // Give it an empty "file": the load fails, and readiness says so.
  closeSync(openSync(fifo, 'w'));
  for (let i = 0; i < 200; i++) {
    const r = await raw(srv, 'GET', '/health/ready');
    if (r.json.reason !== 'Models still loading') break;
    await new Promise((res) => setTimeout(res, 25));
  }
  const after = await raw(srv, 'GET', '/health/ready');
  assert.equal(after.status, 503);
  assert.equal(after.json.reason, 'No models loaded');
  assert.equal(after.json.progress, '1/1');
  const m = await srv.client.models.retrieve('slow');
  assert.equal(m.status, 'failed');
  assert.ok(m.error.length > 0);
});

test('with no model loaded, ready is 503 until one is loaded', async (t) => {
  const srv = await startServer({ models: [{ id: 'stories' }], preload: [], waitReady: false });
  t.after(() => srv.stop());
  const nr = await raw(srv, 'GET', '/health/ready');
  assert.equal(nr.status, 503);
  assert.equal(nr.json.reason, 'No models loaded');
  assert.equal((await raw(srv, 'POST', '/v1/models/stories/load')).status, 200);
  const ready = await waitReady(srv);
  assert.deepEqual(ready.loaded_models, ['stories']);
});

test('an API key, when configured, guards /v1 but not /health', async (t) => {
  const srv = await startServer({ models: [{ id: 'stories' }], env: { INFERENCE_API_KEY: 'sekret' }, apiKey: 'sekret' });
  t.after(() => srv.stop());
  assert.equal((await srv.client.models.list()).data.length, 1);
  specError(assert, await raw(srv, 'GET', '/v1/models'), 401, 'UNAUTHORIZED');
  specError(assert, await raw(srv, 'GET', '/v1/models', undefined, { authorization: 'Bearer wrong' }), 401, 'UNAUTHORIZED');
  assert.equal((await raw(srv, 'GET', '/health')).status, 200);
});

test('a keys file: each key works through the SDK, rotation needs no restart', async (t) => {
  const { mkdtempSync, writeFileSync, renameSync } = await import('node:fs');
  const { tmpdir } = await import('node:os');
  const dir = mkdtempSync(`${tmpdir()}/brigade-keys-`);
  const file = `${dir}/keys`;
  writeFileSync(file, '# team keys\nalpha-key-1\n\n  beta-key-2  \n', { mode: 0o600 });
  const srv = await startServer({ models: [{ id: 'stories' }], env: { INFERENCE_API_KEYS_FILE: file, INFERENCE_API_KEY: 'main-key' }, apiKey: 'alpha-key-1' });
  t.after(() => srv.stop());
  const as = (key) => new OpenAI({ baseURL: `${srv.baseURL}/v1`, apiKey: key, maxRetries: 0 });
  for (const key of ['alpha-key-1', 'beta-key-2', 'main-key']) assert.equal((await as(key).models.list()).data.length, 1, key);
  for (const key of ['gamma', 'alpha-key-', 'alpha-key-1x', '# team keys']) {
    await assert.rejects(as(key).models.list(), (e) => e.status === 401, key);
  }
  // Rotate: beta out, gamma in, written atomically the way deploy tools do.
  writeFileSync(`${dir}/keys.new`, 'alpha-key-1\ngamma-key-3\n', { mode: 0o600 });
  renameSync(`${dir}/keys.new`, file);
  await new Promise((r) => setTimeout(r, 1100)); // the file is looked at once a second
  await as('alpha-key-1').models.list(); // this request notices the change
  assert.equal((await as('gamma-key-3').models.list()).data.length, 1);
  await assert.rejects(as('beta-key-2').models.list(), (e) => e.status === 401);
  // A broken file keeps the last good keys rather than locking everyone out.
  writeFileSync(`${dir}/keys.new`, 'has a space\n', { mode: 0o600 });
  renameSync(`${dir}/keys.new`, file);
  await new Promise((r) => setTimeout(r, 1100));
  await as('alpha-key-1').models.list();
  assert.equal((await as('gamma-key-3').models.list()).data.length, 1);
  assert.equal((await raw(srv, 'GET', '/health')).status, 200);
});

test('a keys file that is missing or empty stops start-up with its name', async () => {
  const { mkdtempSync, writeFileSync } = await import('node:fs');
  const { tmpdir } = await import('node:os');
  const dir = mkdtempSync(`${tmpdir()}/brigade-keys-`);
  writeFileSync(`${dir}/empty`, '# nothing here\n');
  for (const [file, why] of [[`${dir}/absent`, /No such file/], [`${dir}/empty`, /has no key/]]) {
    await assert.rejects(startServer({ models: [{ id: 'stories' }], env: { INFERENCE_API_KEYS_FILE: file } }), (e) => {
      assert.match(e.message, why);
      assert.ok(e.message.includes(file), e.message);
      return true;
    });
  }
});

test('a model object says when its file was made', async (t) => {
  const srv = await startServer({ models: [{ id: 'stories' }] });
  t.after(() => srv.stop());
  const { statSync } = await import('node:fs');
  const m = await srv.client.models.retrieve('stories');
  assert.equal(m.created, Math.floor(statSync(`${process.env.BRIGADE_MODELS_DIR}/stories260K.gguf`).mtimeMs / 1000));
});

test('a chat_template override changes how the prompt is rendered', async (t) => {
  const srv = await startServer({
    models: [{ id: 'plain' }, { id: 'llama3', chat_template: 'llama3' }],
  });
  t.after(() => srv.stop());
  const ask = (model) => srv.client.chat.completions.create({ model, messages: [{ role: 'user', content: 'Hello there' }], max_tokens: 1 });
  const [a, b] = [await ask('plain'), await ask('llama3')];
  // ChatML and Llama-3 wrap the same message in different markers.
  assert.notEqual(a.usage.prompt_tokens, b.usage.prompt_tokens);
});

test('an unknown chat_template fails the model load with a clear error', async (t) => {
  const srv = await startServer({ models: [{ id: 'odd', chat_template: 'no-such-template' }], preload: [], waitReady: false });
  t.after(() => srv.stop());
  const e = specError(assert, await raw(srv, 'POST', '/v1/models/odd/load'), 500, 'MODEL_LOAD_FAILED');
  assert.match(e.message, /no-such-template/);
});
