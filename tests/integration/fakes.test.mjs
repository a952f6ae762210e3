// Self-test of the fake upstream (tests/integration/fakes/upstream.mjs).
// It needs no brigade binary: the official openai SDK talks to the fake
// directly, which proves the fake speaks the real OpenAI wire protocol, and
// plain fetch checks the Ollama NDJSON protocol and the fault injection.
//
//   cd /work/main && node --test tests/integration/fakes.test.mjs
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { startFakeUpstream, splitPieces, fakeEmbedding, fakeEmbedTokens } from './fakes/upstream.mjs';

const REPLY = 'Hello from the fake upstream.';

function sdk(fake, extra = {}) {
  return new OpenAI({ baseURL: `${fake.url}/v1`, apiKey: 'test-key', maxRetries: 0, timeout: 5000, ...extra });
}

// Reads a fetch Response body as lines (NDJSON or SSE), yielding each line.
async function* lines(res) {
  const dec = new TextDecoder();
  let buf = '';
  for await (const chunk of res.body) {
    buf += dec.decode(chunk, { stream: true });
    let i;
    while ((i = buf.indexOf('\n')) !== -1) {
      yield buf.slice(0, i);
      buf = buf.slice(i + 1);
    }
  }
  if (buf) yield buf;
}

const post = (url, body, headers = {}) =>
  fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) });

const norm = (v) => Math.sqrt(v.reduce((s, x) => s + x * x, 0));

// The body of a response the fake may cut midway: its text, or null when
// reading it failed.
async function bodyOrNull(r) {
  try {
    return await r.text();
  } catch {
    return null;
  }
}

test('splitPieces keeps the spaces', () => {
  assert.deepEqual(splitPieces(REPLY), ['Hello', ' from', ' the', ' fake', ' upstream.']);
  assert.equal(splitPieces(' a  b ').join(''), ' a  b ');
});

describe('openai kind, official SDK', () => {
  let fake, client;
  before(async () => {
    fake = await startFakeUpstream({ models: ['m1', 'm2'] });
    client = sdk(fake);
  });
  after(() => fake.close());

  test('listens on 127.0.0.1 and answers /health', async () => {
    assert.equal(fake.url, `http://127.0.0.1:${fake.port}`);
    const r = await fetch(`${fake.url}/health`);
    assert.deepEqual(await r.json(), { status: 'ok' });
  });

  test('models.list', async () => {
    const ids = [];
    for await (const m of client.models.list()) {
      assert.equal(m.object, 'model');
      assert.equal(m.owned_by, 'fake');
      ids.push(m.id);
    }
    assert.deepEqual(ids, ['m1', 'm2']);
  });

  test('non-streamed chat returns the reply and records the request', async () => {
    fake.requests.length = 0;
    const r = await client.chat.completions.create({ model: 'm1', messages: [{ role: 'user', content: 'say hi to me' }] });
    assert.equal(r.object, 'chat.completion');
    assert.equal(r.choices[0].message.role, 'assistant');
    assert.equal(r.choices[0].message.content, REPLY);
    assert.equal(r.choices[0].finish_reason, 'stop');
    assert.deepEqual(r.usage, { prompt_tokens: 4, completion_tokens: 5, total_tokens: 9 });
    assert.equal(fake.requests.length, 1);
    const req = fake.requests[0];
    assert.equal(req.method, 'POST');
    assert.equal(req.path, '/v1/chat/completions');
    assert.equal(req.headers.authorization, 'Bearer test-key');
    assert.equal(req.body.model, 'm1');
  });

  test('streamed chat concatenates to the reply, with usage when asked', async () => {
    const stream = await client.chat.completions.create({
      model: 'm1',
      messages: [{ role: 'system', content: 'be brief' }, { role: 'user', content: 'hi' }],
      stream: true,
      stream_options: { include_usage: true },
    });
    let text = '';
    let first = true;
    let finish = null;
    let usage = null;
    let chunks = 0;
    for await (const c of stream) {
      chunks++;
      assert.equal(c.object, 'chat.completion.chunk');
      if (first) {
        assert.deepEqual(c.choices[0].delta.role, 'assistant');
        assert.equal(c.choices[0].delta.content, '');
        first = false;
      }
      if (c.choices.length) {
        text += c.choices[0].delta.content ?? '';
        finish = c.choices[0].finish_reason ?? finish;
      }
      if (c.usage) {
        assert.equal(c.choices.length, 0);
        usage = c.usage;
      }
    }
    assert.equal(text, REPLY);
    assert.equal(finish, 'stop');
    assert.equal(chunks, 1 + 5 + 1 + 1); // role, pieces, finish, usage
    assert.deepEqual(usage, { prompt_tokens: 3, completion_tokens: 5, total_tokens: 8 });
  });

  test('max_tokens smaller than the reply -> finish_reason length', async () => {
    const r = await client.chat.completions.create({ model: 'm1', messages: [{ role: 'user', content: 'x' }], max_tokens: 2 });
    assert.equal(r.choices[0].message.content, 'Hello from');
    assert.equal(r.choices[0].finish_reason, 'length');
    assert.equal(r.usage.completion_tokens, 2);

    const s = await client.chat.completions.create({ model: 'm1', messages: [{ role: 'user', content: 'x' }], max_tokens: 3, stream: true });
    let text = '';
    let finish = null;
    for await (const c of s) {
      text += c.choices[0]?.delta?.content ?? '';
      finish = c.choices[0]?.finish_reason ?? finish;
    }
    assert.equal(text, 'Hello from the');
    assert.equal(finish, 'length');
  });

  test('stop cuts the reply before the first stop string', async () => {
    const r = await client.chat.completions.create({ model: 'm1', messages: [{ role: 'user', content: 'x' }], stop: ['upstream', ' the'] });
    assert.equal(r.choices[0].message.content, 'Hello from');
    assert.equal(r.choices[0].finish_reason, 'stop');
    const r2 = await client.chat.completions.create({ model: 'm1', messages: [{ role: 'user', content: 'x' }], stop: 'fake' });
    assert.equal(r2.choices[0].message.content, 'Hello from the ');
  });

  test('n > 1 gives every choice the same text, streamed too', async () => {
    const r = await client.chat.completions.create({ model: 'm1', messages: [{ role: 'user', content: 'x' }], n: 3 });
    assert.deepEqual(r.choices.map((c) => [c.index, c.message.content]), [[0, REPLY], [1, REPLY], [2, REPLY]]);
    const s = await client.chat.completions.create({ model: 'm1', messages: [{ role: 'user', content: 'x' }], n: 2, stream: true });
    const texts = ['', ''];
    for await (const c of s) for (const ch of c.choices) texts[ch.index] += ch.delta.content ?? '';
    assert.deepEqual(texts, [REPLY, REPLY]);
  });

  test('legacy completions, plain and streamed', async () => {
    const r = await client.completions.create({ model: 'm2', prompt: 'once upon a time' });
    assert.equal(r.object, 'text_completion');
    assert.equal(r.choices[0].text, REPLY);
    assert.equal(r.usage.prompt_tokens, 4);
    const s = await client.completions.create({ model: 'm2', prompt: 'p', stream: true, max_tokens: 4, stream_options: { include_usage: true } });
    let text = '';
    let finish = null;
    let usage = null;
    for await (const c of s) {
      text += c.choices[0]?.text ?? '';
      finish = c.choices[0]?.finish_reason ?? finish;
      usage = c.usage ?? usage;
    }
    assert.equal(text, 'Hello from the fake');
    assert.equal(finish, 'length');
    assert.equal(usage.completion_tokens, 4);
  });

  test('embeddings: 8 deterministic floats per input (SDK base64 default and float)', async () => {
    const r = await client.embeddings.create({ model: 'm1', input: ['alpha', 'beta'] });
    assert.equal(r.object, 'list');
    assert.equal(r.model, 'm1');
    assert.equal(r.data.length, 2);
    assert.deepEqual(r.data.map((d) => d.index), [0, 1]);
    for (const d of r.data) {
      assert.equal(d.object, 'embedding');
      assert.equal(d.embedding.length, 8);
    }
    assert.deepEqual(r.data[0].embedding, fakeEmbedding('alpha'));
    assert.notDeepEqual(r.data[0].embedding, r.data[1].embedding);
    assert.deepEqual(r.usage, { prompt_tokens: 2, total_tokens: 2 });
    const f = await client.embeddings.create({ model: 'm1', input: 'alpha', encoding_format: 'float' });
    assert.deepEqual(f.data[0].embedding, fakeEmbedding('alpha'));
  });

  test('embeddings as floats: one per input in order, token ids too, usage, recorded', async () => {
    fake.requests.length = 0;
    const input = ['alpha beta', [1, 2, 3], 'gamma'];
    const r = await client.embeddings.create({ model: 'm1', input, encoding_format: 'float' });
    assert.deepEqual(r.data.map((d) => d.index), [0, 1, 2]);
    r.data.forEach((d, i) => {
      assert.deepEqual(d.embedding, fakeEmbedding(input[i]));
      assert.ok(Math.abs(norm(d.embedding) - 1) < 1e-6);
    });
    assert.notDeepEqual(r.data[0].embedding, r.data[2].embedding);
    assert.notDeepEqual(fakeEmbedding([1, 2, 3]), fakeEmbedding('1,2,3'));
    assert.equal(fakeEmbedTokens('alpha beta'), 2);
    assert.deepEqual(r.usage, { prompt_tokens: 2 + 3 + 1, total_tokens: 6 });
    assert.equal(fake.requests.length, 1);
    const req = fake.requests[0];
    assert.equal(req.path, '/v1/embeddings');
    assert.equal(req.headers.authorization, 'Bearer test-key');
    assert.deepEqual(req.body, { model: 'm1', input, encoding_format: 'float' });
  });

  test('embeddings honour dimensions', async () => {
    const r = await client.embeddings.create({ model: 'm1', input: 'alpha', encoding_format: 'float', dimensions: 3 });
    assert.equal(r.data[0].embedding.length, 3);
    assert.deepEqual(r.data[0].embedding, fakeEmbedding('alpha', 3));
    assert.ok(Math.abs(norm(r.data[0].embedding) - 1) < 1e-6);
    const b = await client.embeddings.create({ model: 'm1', input: 'alpha', dimensions: 5 }); // base64
    assert.deepEqual(b.data[0].embedding, fakeEmbedding('alpha', 5));
    // The default 8 is the first 8 of no longer vector: each length is its own unit vector.
    assert.equal(fakeEmbedding('alpha').length, 8);
  });

  test('embeddings refuse bad input, bad dimensions and unknown models like OpenAI', async () => {
    for (const input of ['', [], [''], [[]], [-1], ['a', 1], { a: 1 }]) {
      await assert.rejects(client.embeddings.create({ model: 'm1', input, encoding_format: 'float' }), (e) => {
        assert.ok(e instanceof OpenAI.BadRequestError, JSON.stringify(input));
        assert.equal(e.param, 'input');
        return true;
      });
    }
    await assert.rejects(client.embeddings.create({ model: 'm1', input: 'a', dimensions: 0 }), (e) => e instanceof OpenAI.BadRequestError && e.param === 'dimensions');
    await assert.rejects(client.embeddings.create({ model: 'nope', input: 'a' }), OpenAI.NotFoundError);
  });

  test('faults apply to /v1/embeddings: status by path, refuse, slowFirstByte, cutAfter, malformed', async () => {
    const create = () => client.embeddings.create({ model: 'm1', input: 'a', encoding_format: 'float' });
    fake.setFault({ type: 'status', status: 503, path: '/v1/embeddings', failNext: 1 });
    const chat = await client.chat.completions.create({ model: 'm1', messages: [{ role: 'user', content: 'x' }] });
    assert.equal(chat.choices[0].message.content, REPLY, 'other paths stay healthy');
    await assert.rejects(create(), (e) => e.status === 503);
    assert.equal(fake.requests.at(-1).fault, 'status');
    assert.equal((await create()).data.length, 1, 'failNext spent');

    fake.setFault({ type: 'refuse', path: '/v1/embeddings', failNext: 1 });
    await assert.rejects(create(), OpenAI.APIConnectionError);

    fake.setFault({ type: 'slowFirstByte', ms: 300, failNext: 1 });
    const t0 = Date.now();
    assert.equal((await create()).data.length, 1);
    assert.ok(Date.now() - t0 >= 280);

    fake.setFault({ type: 'cutAfter', failNext: 1 });
    let r = await post(`${fake.url}/v1/embeddings`, { model: 'm1', input: 'a', encoding_format: 'float' });
    assert.equal(r.status, 200);
    const text = await bodyOrNull(r);
    assert.ok(text === null || text.length > 0, 'half a body or a read error');
    if (text !== null) assert.throws(() => JSON.parse(text));
    assert.equal(fake.closedEarly, 0, 'a deliberate cut is not a client cancel');

    fake.setFault({ type: 'malformed', failNext: 1 });
    r = await post(`${fake.url}/v1/embeddings`, { model: 'm1', input: 'a' });
    assert.equal(r.status, 200);
    assert.equal(await r.text(), '{not json');
  });

  test('a client that leaves a slow embeddings request counts as closedEarly', async () => {
    // Its own fake: the suite's must keep closedEarly at 0 for the cut tests.
    const slow = await startFakeUpstream({ models: ['m1'], fault: { type: 'slowStream', ms: 5000, path: '/v1/embeddings' } });
    try {
      const t0 = Date.now();
      await assert.rejects(
        sdk(slow, { timeout: 150 }).embeddings.create({ model: 'm1', input: 'a', encoding_format: 'float' }),
        OpenAI.APIConnectionTimeoutError,
      );
      await slow.waitForClosedEarly(1, 2000);
      assert.ok(Date.now() - t0 < 2000, 'the wait ended with the client');
    } finally {
      await slow.close();
    }
  });

  test('unknown model -> NotFoundError', async () => {
    await assert.rejects(client.chat.completions.create({ model: 'nope', messages: [{ role: 'user', content: 'x' }] }), OpenAI.NotFoundError);
  });

  test('fault status 429 -> RateLimitError with Retry-After', async () => {
    fake.setFault({ type: 'status', status: 429, retryAfter: 7 });
    try {
      await assert.rejects(client.chat.completions.create({ model: 'm1', messages: [{ role: 'user', content: 'x' }] }), (err) => {
        assert.ok(err instanceof OpenAI.RateLimitError);
        assert.equal(err.status, 429);
        assert.equal(err.headers.get('retry-after'), '7');
        assert.equal(err.code, 'rate_limit_exceeded');
        return true;
      });
    } finally {
      fake.setFault(null);
    }
  });

  test('failNext applies the fault to the next k requests only', async () => {
    fake.setFault({ type: 'status', status: 500, failNext: 2 });
    for (let i = 0; i < 2; i++) {
      await assert.rejects(client.chat.completions.create({ model: 'm1', messages: [{ role: 'user', content: 'x' }] }), OpenAI.InternalServerError);
    }
    const r = await client.chat.completions.create({ model: 'm1', messages: [{ role: 'user', content: 'x' }] });
    assert.equal(r.choices[0].message.content, REPLY);
  });

  test('fault status with a custom body and 503', async () => {
    fake.setFault({ type: 'status', status: 503, body: { error: { message: 'busy', type: 'server_error', code: 'overloaded' } }, failNext: 1 });
    const r = await fetch(`${fake.url}/v1/models`);
    assert.equal(r.status, 503);
    assert.deepEqual(await r.json(), { error: { message: 'busy', type: 'server_error', code: 'overloaded' } });
  });

  test('fault path limits the fault to a path prefix', async () => {
    fake.setFault({ type: 'status', status: 500, path: '/v1/chat' });
    try {
      assert.equal((await fetch(`${fake.url}/v1/models`)).status, 200);
      assert.equal((await post(`${fake.url}/v1/chat/completions`, { model: 'm1', messages: [] })).status, 500);
    } finally {
      fake.setFault(null);
    }
  });

  test('fault cutAfter: the SDK stream fails or ends without the full text', async () => {
    fake.setFault({ type: 'cutAfter', chunks: 3, failNext: 1 });
    const s = await client.chat.completions.create({ model: 'm1', messages: [{ role: 'user', content: 'x' }], stream: true });
    let text = '';
    let threw = false;
    try {
      for await (const c of s) text += c.choices[0]?.delta?.content ?? '';
    } catch {
      threw = true;
    }
    assert.ok(threw || text !== REPLY, `stream should not complete (threw=${threw}, text=${JSON.stringify(text)})`);
    assert.equal(text, 'Hello from'); // role chunk + 2 pieces were sent
    assert.equal(fake.closedEarly, 0, 'a deliberate cut is not a client cancel');
  });

  test('fault cutAfter on a raw stream: no [DONE]', async () => {
    fake.setFault({ type: 'cutAfter', chunks: 2, failNext: 1 });
    const r = await post(`${fake.url}/v1/chat/completions`, { model: 'm1', messages: [{ role: 'user', content: 'x' }], stream: true });
    const got = [];
    await assert.rejects(async () => {
      for await (const l of lines(r)) if (l) got.push(l);
    });
    assert.equal(got.length, 2);
    assert.ok(!got.includes('data: [DONE]'));
  });

  test('fault refuse: the connection is dropped without a response', async () => {
    fake.setFault({ type: 'refuse', failNext: 1 });
    await assert.rejects(client.chat.completions.create({ model: 'm1', messages: [{ role: 'user', content: 'x' }] }), OpenAI.APIConnectionError);
    assert.equal(fake.requests.at(-1).fault, 'refuse');
    const r = await client.chat.completions.create({ model: 'm1', messages: [{ role: 'user', content: 'x' }] });
    assert.equal(r.choices[0].message.content, REPLY);
  });

  test('fault malformed: one good chunk, a bad line, then [DONE]', async () => {
    fake.setFault({ type: 'malformed', failNext: 1 });
    const r = await post(`${fake.url}/v1/chat/completions`, { model: 'm1', messages: [{ role: 'user', content: 'x' }], stream: true });
    const got = [];
    for await (const l of lines(r)) if (l) got.push(l);
    assert.equal(got.length, 4);
    assert.equal(JSON.parse(got[0].slice(6)).choices[0].delta.role, 'assistant');
    assert.equal(JSON.parse(got[1].slice(6)).choices[0].delta.content, 'Hello');
    assert.equal(got[2], 'data: {not json');
    assert.equal(got[3], 'data: [DONE]');
  });

  test('fault slowFirstByte delays the headers; a client timeout counts as closedEarly', async () => {
    fake.setFault({ type: 'slowFirstByte', ms: 300, failNext: 1 });
    const t0 = Date.now();
    const r = await client.chat.completions.create({ model: 'm1', messages: [{ role: 'user', content: 'x' }] });
    assert.ok(Date.now() - t0 >= 280);
    assert.equal(r.choices[0].message.content, REPLY);

    const before = fake.closedEarly;
    fake.setFault({ type: 'slowFirstByte', ms: 5000, failNext: 1 });
    await assert.rejects(
      sdk(fake, { timeout: 150 }).chat.completions.create({ model: 'm1', messages: [{ role: 'user', content: 'x' }] }),
      OpenAI.APIConnectionTimeoutError,
    );
    await fake.waitForClosedEarly(before + 1, 2000);
  });
});

test('openai kind: a model that does not embed -> 400; embedDim sets the length', async () => {
  const fake = await startFakeUpstream({ models: ['chat', 'emb'], nonEmbeddingModels: ['chat'], embedDim: 3 });
  try {
    const client = sdk(fake);
    await assert.rejects(client.embeddings.create({ model: 'chat', input: 'a' }), (e) => {
      assert.ok(e instanceof OpenAI.BadRequestError);
      assert.match(e.message, /does not support embeddings/);
      return true;
    });
    const r = await client.embeddings.create({ model: 'emb', input: 'a', encoding_format: 'float' });
    assert.deepEqual(r.data[0].embedding, fakeEmbedding('a', 3));
  } finally {
    await fake.close();
  }
});

describe('openai kind, apiKey', () => {
  let fake;
  before(async () => {
    fake = await startFakeUpstream({ apiKey: 'sekret' });
  });
  after(() => fake.close());

  test('wrong key -> 401 AuthenticationError, right key works, /health is open', async () => {
    await assert.rejects(sdk(fake, { apiKey: 'wrong' }).models.list(), (err) => {
      assert.ok(err instanceof OpenAI.AuthenticationError);
      assert.equal(err.status, 401);
      assert.equal(err.code, 'invalid_api_key');
      assert.equal(err.type, 'invalid_request_error');
      return true;
    });
    const r = await sdk(fake, { apiKey: 'sekret' }).chat.completions.create({ model: 'fake-model', messages: [{ role: 'user', content: 'x' }] });
    assert.equal(r.choices[0].message.content, REPLY);
    assert.equal((await fetch(`${fake.url}/health`)).status, 200);
  });
});

describe('closedEarly', () => {
  let fake;
  before(async () => {
    fake = await startFakeUpstream({ reply: 'one two three four five six seven eight' });
  });
  after(() => fake.close());

  test('abort after the first chunk of a slowStream is counted', async () => {
    fake.setFault({ type: 'slowStream', ms: 200 });
    const ac = new AbortController();
    const r = await fetch(`${fake.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'fake-model', messages: [{ role: 'user', content: 'x' }], stream: true }),
      signal: ac.signal,
    });
    const reader = r.body.getReader();
    const { value } = await reader.read();
    assert.match(new TextDecoder().decode(value), /^data: /);
    ac.abort();
    await fake.waitForClosedEarly(1, 2000);
    assert.equal(fake.closedEarly, 1);
    fake.setFault(null);
  });

  test('a completed request is not counted; waitForClosedEarly times out', async () => {
    const r = await post(`${fake.url}/v1/chat/completions`, { model: 'fake-model', messages: [{ role: 'user', content: 'x' }], stream: true });
    await r.text();
    await assert.rejects(fake.waitForClosedEarly(2, 100), /waitForClosedEarly/);
  });
});

describe('ollama kind', () => {
  let fake;
  before(async () => {
    fake = await startFakeUpstream({ kind: 'ollama', models: ['llama3:latest', 'tiny'] });
  });
  after(() => fake.close());

  test('/api/tags', async () => {
    const j = await (await fetch(`${fake.url}/api/tags`)).json();
    assert.deepEqual(j.models.map((m) => m.name), ['llama3:latest', 'tiny']);
    for (const m of j.models) {
      assert.equal(m.model, m.name);
      assert.equal(typeof m.modified_at, 'string');
      assert.equal(typeof m.size, 'number');
      assert.match(m.digest, /^[0-9a-f]{64}$/);
      assert.equal(typeof m.details, 'object');
    }
  });

  test('/api/chat NDJSON stream concatenates to the reply, ends done:true', async () => {
    const r = await post(`${fake.url}/api/chat`, { model: 'llama3', messages: [{ role: 'user', content: 'hello there' }] });
    assert.equal(r.status, 200);
    assert.match(r.headers.get('content-type'), /application\/x-ndjson/);
    const objs = [];
    for await (const l of lines(r)) if (l) objs.push(JSON.parse(l));
    const last = objs.at(-1);
    assert.equal(objs.slice(0, -1).every((o) => o.done === false && o.message.role === 'assistant'), true);
    assert.equal(objs.map((o) => o.message.content).join(''), REPLY);
    assert.equal(last.done, true);
    assert.equal(last.done_reason, 'stop');
    assert.equal(last.eval_count, 5);
    assert.equal(last.prompt_eval_count, 2);
    assert.equal(last.model, 'llama3');
  });

  test('/api/chat stream:false with num_predict and stop', async () => {
    let j = await (await post(`${fake.url}/api/chat`, { model: 'tiny', messages: [{ role: 'user', content: 'x' }], stream: false, options: { num_predict: 2 } })).json();
    assert.equal(j.message.content, 'Hello from');
    assert.equal(j.done, true);
    assert.equal(j.done_reason, 'length');
    assert.equal(j.eval_count, 2);
    j = await (await post(`${fake.url}/api/chat`, { model: 'tiny', messages: [{ role: 'user', content: 'x' }], stream: false, options: { stop: ['fake'] } })).json();
    assert.equal(j.message.content, 'Hello from the ');
    assert.equal(j.done_reason, 'stop');
  });

  test('/api/generate streams "response"', async () => {
    const r = await post(`${fake.url}/api/generate`, { model: 'tiny', prompt: 'why is the sky blue' });
    const objs = [];
    for await (const l of lines(r)) if (l) objs.push(JSON.parse(l));
    assert.equal(objs.map((o) => o.response).join(''), REPLY);
    assert.equal(objs.at(-1).done, true);
    assert.equal(objs.at(-1).prompt_eval_count, 5);
    const j = await (await post(`${fake.url}/api/generate`, { model: 'tiny', prompt: 'p', stream: false })).json();
    assert.equal(j.response, REPLY);
    assert.equal(j.done, true);
  });

  test('embeddings and embed', async () => {
    const a = await (await post(`${fake.url}/api/embeddings`, { model: 'tiny', prompt: 'alpha' })).json();
    assert.deepEqual(a.embedding, fakeEmbedding('alpha'));
    const b = await (await post(`${fake.url}/api/embed`, { model: 'tiny', input: ['alpha', 'beta'] })).json();
    assert.equal(b.embeddings.length, 2);
    assert.deepEqual(b.embeddings[0], fakeEmbedding('alpha'));
  });

  test('/api/embeddings: one prompt in, a vector and no token count out, recorded', async () => {
    fake.requests.length = 0;
    const r = await post(`${fake.url}/api/embeddings`, { model: 'llama3', prompt: 'alpha beta' });
    assert.equal(r.status, 200);
    const j = await r.json();
    assert.deepEqual(Object.keys(j), ['embedding']);
    assert.deepEqual(j.embedding, fakeEmbedding('alpha beta'));
    assert.deepEqual(fake.requests.at(-1).body, { model: 'llama3', prompt: 'alpha beta' });
    assert.equal(fake.requests.at(-1).path, '/api/embeddings');
    const e = await post(`${fake.url}/api/embeddings`, { model: 'x', prompt: 'a' });
    assert.equal(e.status, 404);
    assert.deepEqual(await e.json(), { error: "model 'x' not found" });
  });

  test('/api/embeddings faults: status, refuse, cutAfter, malformed', async () => {
    const embed = () => post(`${fake.url}/api/embeddings`, { model: 'tiny', prompt: 'a' });
    fake.setFault({ type: 'status', status: 500, path: '/api/embeddings', failNext: 1 });
    let r = await embed();
    assert.equal(r.status, 500);
    assert.equal(typeof (await r.json()).error, 'string');
    assert.equal((await embed()).status, 200);

    fake.setFault({ type: 'refuse', failNext: 1 });
    await assert.rejects(embed());

    fake.setFault({ type: 'cutAfter', failNext: 1 });
    r = await embed();
    const text = await bodyOrNull(r);
    if (text !== null) assert.throws(() => JSON.parse(text));

    fake.setFault({ type: 'malformed', failNext: 1 });
    assert.equal(await (await embed()).text(), '{not json');
  });

  test('/api/embeddings of a model that does not embed is an empty vector', async () => {
    const f = await startFakeUpstream({ kind: 'ollama', models: ['llama3', 'nomic-embed-text'], nonEmbeddingModels: ['llama3'] });
    try {
      assert.deepEqual(await (await post(`${f.url}/api/embeddings`, { model: 'llama3:latest', prompt: 'a' })).json(), { embedding: [] });
      const ok = await (await post(`${f.url}/api/embeddings`, { model: 'nomic-embed-text', prompt: 'a' })).json();
      assert.equal(ok.embedding.length, 8);
    } finally {
      await f.close();
    }
  });

  test('unknown model -> 404 {"error"}', async () => {
    const r = await post(`${fake.url}/api/chat`, { model: 'x', messages: [{ role: 'user', content: 'hi' }] });
    assert.equal(r.status, 404);
    assert.deepEqual(await r.json(), { error: "model 'x' not found" });
  });

  test('faults speak Ollama too: status, cutAfter, malformed', async () => {
    fake.setFault({ type: 'status', status: 500, failNext: 1 });
    let r = await post(`${fake.url}/api/chat`, { model: 'tiny', messages: [{ role: 'user', content: 'hi' }] });
    assert.equal(r.status, 500);
    assert.equal(typeof (await r.json()).error, 'string');

    fake.setFault({ type: 'cutAfter', chunks: 2, failNext: 1 });
    r = await post(`${fake.url}/api/chat`, { model: 'tiny', messages: [{ role: 'user', content: 'hi' }] });
    const got = [];
    await assert.rejects(async () => {
      for await (const l of lines(r)) if (l) got.push(JSON.parse(l));
    });
    assert.equal(got.length, 2);
    assert.ok(got.every((o) => !o.done));

    fake.setFault({ type: 'malformed', failNext: 1 });
    r = await post(`${fake.url}/api/chat`, { model: 'tiny', messages: [{ role: 'user', content: 'hi' }] });
    const raw = [];
    for await (const l of lines(r)) if (l) raw.push(l);
    assert.equal(raw.length, 3);
    assert.equal(JSON.parse(raw[0]).message.content, 'Hello');
    assert.equal(raw[1], '{not json');
    assert.equal(JSON.parse(raw[2]).done, true);
  });
});
