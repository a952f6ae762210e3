// Auto-routing (docs/routing.md) through the official openai SDK: model
// "auto" with INFERENCE_AUTO_ROUTE_ENABLED — round_robin takes turns,
// least_busy sends a request past a busy model, a candidate that refuses
// connections gives way to the next (INFERENCE_AUTO_ROUTE_FALLBACK), and
// with fallback or auto-routing off nothing of that happens.  Two ids
// share stories260K and the role primary; requests are short.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, raw } from './helpers.mjs';

const msgs = [{ role: 'user', content: 'Once upon a time' }];
const models = [
  { id: 'alpha', slots: 1, context_length: 4096 },
  { id: 'beta', slots: 1, context_length: 4096 },
];
// Long enough to keep a 1-slot model busy while another request is routed
// (it is cancelled as soon as that is done).
const LONG = Number(process.env.BRIGADE_TEST_LONG_TOKENS ?? 1500);
// Port 9 (discard) refuses connections on a test machine.
const dead = { name: 'dead', kind: 'openai', base_url: 'http://127.0.0.1:9/v1', models: ['m'] };
const deadFirst = {
  INFERENCE_ORCHESTRATION_MODELS: 'dead:m,alpha',
  INFERENCE_MODEL_ROLES: '{"dead:m":["primary"]}',
};

const short = (srv, extra = {}) => srv.client.chat.completions.create(
  { model: 'auto', messages: msgs, max_tokens: 4, ...extra });

async function health(srv) {
  return (await fetch(`${srv.baseURL}/v1/health/inference`)).json();
}

test('round_robin: four "auto" requests are answered by alpha, beta, alpha, beta', async (t) => {
  const srv = await startServer({
    models,
    env: { INFERENCE_AUTO_ROUTE_ENABLED: 'true', INFERENCE_AUTO_ROUTE_STRATEGY: 'round_robin' },
  });
  t.after(() => srv.stop());
  assert.deepEqual((await health(srv)).auto_route, { enabled: true, strategy: 'round_robin', fallback: true });
  const answered = [];
  for (let i = 0; i < 4; i++) {
    const r = await short(srv);
    assert.ok(r.choices[0].message.content.length > 0);
    assert.deepEqual(r.orchestration.models_used, [r.model]);
    answered.push(r.model);
  }
  assert.deepEqual(answered, ['alpha', 'beta', 'alpha', 'beta']);
});

test('least_busy: while alpha streams a long answer, "auto" goes to the idle beta', async (t) => {
  const srv = await startServer({
    models,
    env: { INFERENCE_AUTO_ROUTE_ENABLED: 'true', INFERENCE_AUTO_ROUTE_STRATEGY: 'least_busy' },
  });
  t.after(() => srv.stop());
  // Both idle: the tie goes to configuration order.
  assert.equal((await short(srv)).model, 'alpha');
  // The SDK returns once the first chunk is out: alpha is generating.
  const stream = await srv.client.chat.completions.create(
    { model: 'auto', messages: msgs, max_tokens: LONG, temperature: 0, stream: true });
  const it = stream[Symbol.asyncIterator]();
  const first = await it.next();
  assert.equal(first.value.model, 'alpha');
  const r = await short(srv);
  assert.equal(r.model, 'beta');
  assert.ok(r.choices[0].message.content.length > 0);
  stream.controller.abort();
  await it.return?.().catch(() => {});
});

test('fallback: a candidate that refuses connections gives way to the next; the response names who answered', async (t) => {
  const srv = await startServer({
    models: [models[0]],
    providers: [dead],
    env: { INFERENCE_AUTO_ROUTE_ENABLED: 'true', ...deadFirst },
  });
  t.after(() => srv.stop());
  // least_busy (the default) ties: dead:m comes first in the pool, every time.
  const r = await short(srv);
  assert.equal(r.model, 'alpha');
  assert.deepEqual(r.orchestration.models_used, ['alpha']);
  assert.ok(r.choices[0].message.content.length > 0);
  // Streaming too: nothing had reached the client when dead:m failed.
  let text = '';
  let model = '';
  for await (const c of await short(srv, { stream: true })) {
    model = c.model;
    text += c.choices[0]?.delta?.content ?? '';
  }
  assert.equal(model, 'alpha');
  assert.ok(text.length > 0);
  assert.match(srv.stderr(), /auto-route: dead:m (failed|refused)/);
});

test('fallback off: the first candidate\'s error is the answer', async (t) => {
  const srv = await startServer({
    models: [models[0]],
    providers: [dead],
    env: { INFERENCE_AUTO_ROUTE_ENABLED: 'true', INFERENCE_AUTO_ROUTE_FALLBACK: 'false', ...deadFirst },
  });
  t.after(() => srv.stop());
  const res = await raw(srv, 'POST', '/v1/chat/completions',
    JSON.stringify({ model: 'auto', messages: msgs, max_tokens: 4 }));
  assert.ok(res.status === 502 || res.status === 503, `status ${res.status}: ${res.text}`);
  assert.equal(res.json.error.type, 'retriable');
  assert.ok(['UPSTREAM_ERROR', 'PROVIDER_UNAVAILABLE'].includes(res.json.error.code), res.text);
});

test('auto-routing off (the default): "auto" keeps the first best fit', async (t) => {
  const srv = await startServer({ models });
  t.after(() => srv.stop());
  assert.equal((await health(srv)).auto_route.enabled, false);
  const answered = [];
  for (let i = 0; i < 3; i++) answered.push((await short(srv)).model);
  assert.deepEqual(answered, ['alpha', 'alpha', 'alpha']);
});
