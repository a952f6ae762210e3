// The memory budget for local models (INFERENCE_MEMORY_BUDGET_MB):
// eviction of an idle model to make room, and the two refusals, through
// the official openai SDK and the spec's JSON error body.
//
// stories260K's estimate (weights + KV + compute, see
// docs/configuration.md) is 5 MB at 512 tokens x 1 slot, 10 MB at 4096.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { startServer, raw, specError } from './helpers.mjs';

const hi = [{ role: 'user', content: 'Once upon a time' }];

test('a budget that fits one model: the second request evicts the idle first', async (t) => {
  const srv = await startServer({
    models: [{ id: 'a' }, { id: 'b' }],
    preload: ['a'],
    env: { INFERENCE_MEMORY_BUDGET_MB: '6' },
  });
  t.after(() => srv.stop());
  const ra = await srv.client.chat.completions.create({ model: 'a', messages: hi, max_tokens: 4 });
  assert.equal(ra.usage.completion_tokens, 4);
  const rb = await srv.client.chat.completions.create({ model: 'b', messages: hi, max_tokens: 4 });
  assert.equal(rb.usage.completion_tokens, 4);

  const list = await srv.client.models.list();
  const by = Object.fromEntries(list.data.map((m) => [m.id, m]));
  assert.equal(by.a.status, 'available');
  assert.equal(by.b.status, 'loaded');
  assert.equal(by.b.memory_mb, 5, 'memory_mb of a loaded model is what the budget counts');

  // Evicted, not unloaded by a client: still ready, and a comes back on demand.
  const ready = await raw(srv, 'GET', '/health/ready');
  assert.equal(ready.status, 200);
  const again = await srv.client.chat.completions.create({ model: 'a', messages: hi, max_tokens: 2 });
  assert.equal(again.usage.completion_tokens, 2);
  assert.equal((await srv.client.models.retrieve('b')).status, 'available');
});

test('a model bigger than the whole budget is refused, non-retriable', async (t) => {
  const srv = await startServer({
    models: [{ id: 'a' }],
    preload: [],
    server: { memory_budget_mb: 3 },
    waitReady: false,
  });
  t.after(() => srv.stop());
  await assert.rejects(
    srv.client.chat.completions.create({ model: 'a', messages: hi, max_tokens: 4 }),
    (err) => err instanceof OpenAI.APIError && err.status === 500 && err.code === 'MODEL_LOAD_FAILED' &&
      /needs an estimated 5 MB/.test(err.message) && /INFERENCE_MEMORY_BUDGET_MB/.test(err.message),
  );
  const res = await raw(srv, 'POST', '/v1/chat/completions',
    JSON.stringify({ model: 'a', messages: hi, max_tokens: 4 }));
  const e = specError(assert, res, 500, 'MODEL_LOAD_FAILED');
  assert.equal(e.type, 'non_retriable');
  assert.equal(e.details.model, 'a');
  assert.equal(e.details.needed_mb, 5);
  assert.equal(e.details.budget_mb, 3);
  assert.equal(e.details.weights_mb + e.details.kv_mb + e.details.compute_mb >= 5, true);
  const m = await srv.client.models.retrieve('a');
  assert.equal(m.status, 'failed');
  assert.match(m.error, /more than the whole memory budget of 3 MB/);
});

test('while the model holding the memory is busy, another load is a retriable 503', async (t) => {
  const srv = await startServer({
    models: [{ id: 'big', context_length: 4096 }, { id: 'b' }],
    preload: ['big'],
    env: { INFERENCE_MEMORY_BUDGET_MB: '12' },
  });
  t.after(() => srv.stop());
  // A long generation keeps 'big' busy; the refusal must not disturb it.
  const stream = await srv.client.chat.completions.create({
    model: 'big', messages: hi, max_tokens: 300, stream: true,
    stream_options: { include_usage: true },
  });
  const it = stream[Symbol.asyncIterator]();
  await it.next(); // it is running
  const res = await raw(srv, 'POST', '/v1/chat/completions',
    JSON.stringify({ model: 'b', messages: hi, max_tokens: 4 }));
  const e = specError(assert, res, 503, 'TEMPORARY_RESOURCE_ERROR');
  assert.equal(e.type, 'retriable');
  assert.match(e.message, /big \(10 MB, 1 in flight\)/);
  assert.equal(e.details.needed_mb, 5);
  assert.equal(e.details.budget_mb, 12);
  let finish = null;
  let usage = null;
  for (let r = await it.next(); !r.done; r = await it.next()) {
    finish = r.value.choices[0]?.finish_reason ?? finish;
    usage = r.value.usage ?? usage;
  }
  // Counted in tokens, not chunks: a slow reader (valgrind) gets several
  // tokens a chunk.
  assert.equal(finish, 'length', 'the busy generation ran to its end');
  assert.equal(usage?.completion_tokens, 300);
  // Idle now: b gets the room.
  const rb = await srv.client.chat.completions.create({ model: 'b', messages: hi, max_tokens: 4 });
  assert.equal(rb.usage.completion_tokens, 4);
  assert.equal((await srv.client.models.retrieve('big')).status, 'available');
});
