// Bad input: every case gets the spec's JSON error body with the right
// status, through raw HTTP and through the SDK, and the server lives on.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { startServer, raw, specError } from './helpers.mjs';

let srv;
before(async () => {
  srv = await startServer({ models: [{ id: 'stories', context_length: 64 }], server: { max_body_bytes: 65536 } });
});
after(async () => { assert.equal(await srv.stop(), 0); });

const chat = (body) => raw(srv, 'POST', '/v1/chat/completions', typeof body === 'string' ? body : JSON.stringify(body));
const ok = { model: 'stories', messages: [{ role: 'user', content: 'Hi' }], max_tokens: 2 };

test('malformed JSON is INVALID_JSON with where it broke', async () => {
  const e = specError(assert, await chat('{"model": "stories", "messages": ['), 400, 'INVALID_JSON');
  assert.match(e.message, /line 1/);
});

test('a body that is not an object', async () => {
  specError(assert, await chat('[1,2]'), 400, 'INVALID_REQUEST');
});

test('missing model', async () => {
  const e = specError(assert, await chat({ messages: ok.messages }), 400, 'INVALID_REQUEST');
  assert.equal(e.param, 'model');
});

test('unknown model is 404 MODEL_NOT_FOUND', async () => {
  const e = specError(assert, await chat({ ...ok, model: 'gpt-17' }), 404, 'MODEL_NOT_FOUND');
  assert.equal(e.details.model, 'gpt-17');
  assert.equal(e.type, 'non_retriable');
});

test('wrong types', async () => {
  specError(assert, await chat({ ...ok, temperature: 'hot' }), 400, 'INVALID_REQUEST');
  specError(assert, await chat({ ...ok, max_tokens: 2.5 }), 400, 'INVALID_REQUEST');
  specError(assert, await chat({ ...ok, stream: 'yes' }), 400, 'INVALID_REQUEST');
  specError(assert, await chat({ ...ok, messages: 'Hi' }), 400, 'INVALID_REQUEST');
  specError(assert, await chat({ ...ok, messages: [{ role: 'user', content: 42 }] }), 400, 'INVALID_REQUEST');
  specError(assert, await chat({ ...ok, stop: 7 }), 400, 'INVALID_REQUEST');
});

test('out-of-range values', async () => {
  for (const bad of [{ temperature: 2.5 }, { temperature: -1 }, { top_p: 1.5 }, { n: 0 }, { n: 17 },
    { max_tokens: 0 }, { presence_penalty: 3 }, { priority: 9 }, { stop: ['a', 'b', 'c', 'd', 'e'] }, { stop: [''] }]) {
    const e = specError(assert, await chat({ ...ok, ...bad }), 400, 'INVALID_REQUEST');
    assert.equal(e.param, Object.keys(bad)[0], JSON.stringify(bad));
  }
});

test('empty messages and bad roles', async () => {
  specError(assert, await chat({ ...ok, messages: [] }), 400, 'INVALID_REQUEST');
  specError(assert, await chat({ ...ok, messages: [{ role: 'wizard', content: 'x' }] }), 400, 'INVALID_REQUEST');
  specError(assert, await chat({ ...ok, messages: [{ role: 'user', content: [{ type: 'image_url', image_url: { url: 'x' } }] }] }), 400, 'INVALID_REQUEST');
});

test('invalid UTF-8 in the body', async () => {
  const body = Buffer.concat([Buffer.from('{"model":"stories","messages":[{"role":"user","content":"'), Buffer.from([0xc3, 0x28, 0xff]), Buffer.from('"}]}')]);
  const r = await fetch(`${srv.baseURL}/v1/chat/completions`, { method: 'POST', body, headers: { 'content-type': 'application/json' } });
  const json = await r.json();
  assert.equal(r.status, 400);
  assert.equal(json.error.code, 'INVALID_JSON');
});

test('a body over the limit is 413', async () => {
  const big = JSON.stringify({ ...ok, messages: [{ role: 'user', content: 'x'.repeat(70000) }] });
  specError(assert, await chat(big), 413, 'PAYLOAD_TOO_LARGE');
});

test('a prompt longer than the context is CONTEXT_BUDGET_EXCEEDED with token counts', async () => {
  const e = specError(assert, await chat({ ...ok, messages: [{ role: 'user', content: 'Once upon a time '.repeat(40) }] }), 400, 'CONTEXT_BUDGET_EXCEEDED');
  assert.equal(e.details.budget, 64);
  assert.ok(e.details.current_tokens > 64);
  assert.equal(e.details.model, 'stories');
});

test('a multi-model mode the configured models cannot fill is a clear 400, never a fake answer', async () => {
  const e = specError(assert, await chat({ ...ok, orchestration_mode: 'critique' }), 400, 'INVALID_REQUEST');
  assert.match(e.message, /second model/);
  assert.equal(e.details.orchestration_mode, 'critique');
  specError(assert, await chat({ ...ok, orchestration_mode: 'telepathy' }), 400, 'INVALID_REQUEST');
  specError(assert, await chat({ ...ok, task_type: 'juggle' }), 400, 'INVALID_REQUEST');
  const r = await chat({ ...ok, orchestration_mode: 'single', task_type: 'code', priority: 3 });
  assert.equal(r.status, 200);
});

test('features we cannot honour are refused, not ignored', async () => {
  specError(assert, await chat({ ...ok, tools: [{ type: 'function', function: { name: 'f' } }] }), 400, 'INVALID_REQUEST');
  specError(assert, await chat({ ...ok, response_format: { type: 'json_object' } }), 400, 'INVALID_REQUEST');
  specError(assert, await chat({ ...ok, stream_options: { include_usage: true } }), 400, 'INVALID_REQUEST');
});

test('unknown path is 404, wrong method is 405', async () => {
  specError(assert, await raw(srv, 'GET', '/v1/nothing'), 404, 'NOT_FOUND');
  specError(assert, await raw(srv, 'GET', '/v1/chat/completions'), 405, 'METHOD_NOT_ALLOWED');
});

test('the SDK surfaces our errors as APIError with status and code', async () => {
  await assert.rejects(
    srv.client.chat.completions.create({ ...ok, model: 'nope' }),
    (err) => err instanceof OpenAI.APIError && err.status === 404 && err.code === 'MODEL_NOT_FOUND' && /nope/.test(err.message),
  );
  await assert.rejects(
    srv.client.chat.completions.create({ ...ok, temperature: 9 }),
    (err) => err instanceof OpenAI.BadRequestError && err.param === 'temperature',
  );
});

test('after all that the server still answers', async () => {
  const r = await srv.client.chat.completions.create(ok);
  assert.equal(r.usage.completion_tokens, 2);
});
