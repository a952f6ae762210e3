// POST /v1/embeddings through the official SDK: local vectors from a real
// llama.cpp model (stories260K with mean pooling), both encodings, token
// inputs, batching across decodes, the errors a client can cause, and a
// model that gives no embeddings.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { startServer, raw, specError } from './helpers.mjs';
import { startFakeUpstream, fakeEmbedding } from './fakes/upstream.mjs';

let srv;
before(async () => {
  srv = await startServer({
    models: [
      { id: 'stories', pooling: 'mean', slots: 2, context_length: 128 },
      { id: 'tiny', file: 'llama-2-tiny-random.gguf', context_length: 64 },
    ],
  });
});
after(async () => { await srv?.stop(); });

const norm = (v) => Math.sqrt(v.reduce((s, x) => s + x * x, 0));
const cosine = (a, b) => a.reduce((s, x, i) => s + x * b[i], 0) / (norm(a) * norm(b));
const embed = (input, extra = {}) => srv.client.embeddings.create({ model: 'stories', input, ...extra });

test('local vectors: one per input, in order, unit length, usage counted', async () => {
  const r = await embed(['Once upon a time', 'The cat sat on the mat'], { encoding_format: 'float' });
  assert.equal(r.object, 'list');
  assert.equal(r.model, 'stories');
  assert.equal(r.data.length, 2);
  r.data.forEach((d, i) => {
    assert.equal(d.object, 'embedding');
    assert.equal(d.index, i);
    assert.equal(d.embedding.length, 64, 'n_embd of stories260K');
    assert.ok(Math.abs(norm(d.embedding) - 1) < 1e-5, `L2-normalised: ${norm(d.embedding)}`);
  });
  assert.ok(cosine(r.data[0].embedding, r.data[1].embedding) < 0.999, 'different texts, different vectors');
  assert.ok(r.usage.prompt_tokens >= 8, JSON.stringify(r.usage));
  assert.equal(r.usage.total_tokens, r.usage.prompt_tokens);
});

test('the SDK default (base64) decodes to the same floats as encoding_format float', async () => {
  const input = ['Lily liked to play in the park', 'a'];
  const asFloat = await embed(input, { encoding_format: 'float' });
  const asDefault = await embed(input); // the SDK asks for base64 and decodes it
  for (let i = 0; i < input.length; i++) {
    assert.equal(asDefault.data[i].embedding.length, 64);
    asDefault.data[i].embedding.forEach((x, k) => {
      assert.ok(Math.abs(x - asFloat.data[i].embedding[k]) < 1e-6, `input ${i} dim ${k}: ${x} vs ${asFloat.data[i].embedding[k]}`);
    });
  }
  const res = await raw(srv, 'POST', '/v1/embeddings', JSON.stringify({ model: 'stories', input: 'a', encoding_format: 'base64' }));
  assert.equal(typeof res.json.data[0].embedding, 'string');
  assert.equal(Buffer.from(res.json.data[0].embedding, 'base64').length, 64 * 4, 'float32 little-endian bytes');
});

test('a text gives the same vector alone or batched with others', async () => {
  const text = 'Once upon a time there was a little girl';
  const alone = (await embed(text, { encoding_format: 'float' })).data[0].embedding;
  // 40 inputs: more than one decode's worth of sequences (16), in any position.
  const many = Array.from({ length: 40 }, (_, i) => (i === 33 ? text : `story number ${i} about a dog`));
  const r = await embed(many, { encoding_format: 'float' });
  assert.equal(r.data.length, 40);
  assert.deepEqual(r.data.map((d) => d.index), [...Array(40).keys()]);
  assert.ok(cosine(alone, r.data[33].embedding) > 0.99999, `cosine ${cosine(alone, r.data[33].embedding)}`);
  assert.ok(cosine(r.data[1].embedding, r.data[2].embedding) < 0.99999, 'neighbours do not leak into each other');
});

test('token-id inputs: one array or an array of arrays', async () => {
  const one = await embed([1, 400, 300, 200], { encoding_format: 'float' });
  assert.equal(one.data.length, 1);
  assert.equal(one.usage.prompt_tokens, 4);
  const two = await embed([[1, 400, 300, 200], [1, 50]], { encoding_format: 'float' });
  assert.equal(two.data.length, 2);
  assert.ok(cosine(one.data[0].embedding, two.data[0].embedding) > 0.99999);
});

test('embeddings and a streaming chat share the model without harm', async () => {
  const chat = (async () => {
    let text = '';
    for await (const c of await srv.client.completions.create({ model: 'stories', prompt: 'Once upon a time', max_tokens: 60, temperature: 0, stream: true })) text += c.choices[0]?.text ?? '';
    return text;
  })();
  const vecs = await Promise.all([1, 2, 3].map(() => embed(['one', 'two', 'three'], { encoding_format: 'float' })));
  const text = await chat;
  assert.ok(text.length > 20, text);
  for (const v of vecs) assert.equal(v.data.length, 3);
  assert.ok(cosine(vecs[0].data[1].embedding, vecs[2].data[1].embedding) > 0.99999);
});

test('a model whose file declares no pooling: 400 that says what to do', async () => {
  await assert.rejects(srv.client.embeddings.create({ model: 'tiny', input: 'hi' }), (e) => {
    assert.equal(e.status, 400);
    assert.match(e.message, /does not produce embeddings/);
    assert.match(e.message, /pooling/);
    return true;
  });
});

test('bad inputs get 400 naming the parameter; unknown models 404', async () => {
  const post = (body) => raw(srv, 'POST', '/v1/embeddings', JSON.stringify(body));
  for (const input of ['', [], [''], ['a', 1], [[1, 2], 'a'], [-1], [[]], 5, null, { a: 1 }]) {
    const e = specError(assert, await post({ model: 'stories', input }), 400, 'INVALID_REQUEST');
    assert.equal(e.param, 'input', JSON.stringify(input));
  }
  specError(assert, await post({ model: 'stories' }), 400, 'INVALID_REQUEST');
  specError(assert, await post({ input: 'a' }), 400, 'INVALID_REQUEST');
  assert.equal(specError(assert, await post({ model: 'stories', input: 'a', encoding_format: 'int8' }), 400, 'INVALID_REQUEST').param, 'encoding_format');
  assert.equal(specError(assert, await post({ model: 'stories', input: 'a', dimensions: 8 }), 400, 'INVALID_REQUEST').param, 'dimensions');
  assert.equal((await post({ model: 'stories', input: 'a', dimensions: 64, encoding_format: 'float' })).json.data[0].embedding.length, 64);
  assert.match(specError(assert, await post({ model: 'stories', input: [[1, 2, 100000]] }), 400, 'INVALID_REQUEST').message, /token id/);
  specError(assert, await post({ model: 'stories', input: Array(2049).fill('a') }), 400, 'INVALID_REQUEST');
  const long = specError(assert, await post({ model: 'stories', input: 'word '.repeat(400) }), 400, 'CONTEXT_BUDGET_EXCEEDED');
  assert.equal(long.details.budget, 128);
  specError(assert, await post({ model: 'nope', input: 'a' }), 404, 'MODEL_NOT_FOUND');
  specError(assert, await raw(srv, 'POST', '/v1/embeddings', '{"model":'), 400, 'INVALID_JSON');
  // The server is still fine.
  assert.equal((await embed('still here', { encoding_format: 'float' })).data.length, 1);
});

test('embeddings need the API key when one is set', async () => {
  const s = await startServer({ models: [{ id: 'stories', pooling: 'mean' }], env: { INFERENCE_API_KEY: 'sekret-key-123' }, apiKey: 'sekret-key-123' });
  try {
    const ok = await s.client.embeddings.create({ model: 'stories', input: 'hi' });
    assert.equal(ok.data.length, 1);
    const anon = new OpenAI({ baseURL: `${s.baseURL}/v1`, apiKey: 'wrong', maxRetries: 0 });
    await assert.rejects(anon.embeddings.create({ model: 'stories', input: 'hi' }), (e) => e.status === 401);
  } finally {
    await s.stop();
  }
});

// ---- remote providers: pass-through, encodings, fallback to the same model only ----


async function remoteSetup({ providers, fallback, fakes }) {
  const s = await startServer({ models: [], preload: [], waitReady: false, providers, fallback });
  return s;
}

test('remote embeddings: OpenAI-compatible pass-through, both encodings', async () => {
  const up = await startFakeUpstream({ models: ['emb'] });
  const s = await remoteSetup({ providers: [{ name: 'vllm', kind: 'openai', base_url: `${up.url}/v1`, models: ['emb'] }] });
  try {
    const want = ['alpha', 'beta'].map((t) => fakeEmbedding(t));
    const r = await s.client.embeddings.create({ model: 'vllm:emb', input: ['alpha', 'beta'] }); // base64 by default
    assert.equal(r.data.length, 2);
    r.data.forEach((d, i) => d.embedding.forEach((x, k) => assert.ok(Math.abs(x - want[i][k]) < 1e-6)));
    const f = await s.client.embeddings.create({ model: 'emb', input: 'alpha', encoding_format: 'float', dimensions: 4 });
    assert.equal(f.data[0].embedding.length, 4);
    const body = up.requests.filter((q) => q.path === '/v1/embeddings').at(-1).body;
    assert.equal(body.model, 'emb', 'prefix stripped');
    assert.equal(body.encoding_format, 'float', 'brigade asks upstream for floats');
    assert.equal(body.dimensions, 4);
    assert.ok(f.usage.prompt_tokens > 0);
  } finally {
    await s.stop();
    await up.close();
  }
});

test('remote embeddings: Ollama /api/embeddings, one call per input, text only', async () => {
  const up = await startFakeUpstream({ kind: 'ollama', models: ['nomic-embed-text'] });
  const s = await remoteSetup({ providers: [{ name: 'ollama', kind: 'ollama', base_url: up.url }] });
  try {
    const r = await s.client.embeddings.create({ model: 'ollama:nomic-embed-text', input: ['one', 'two', 'three'], encoding_format: 'float' });
    assert.equal(r.data.length, 3);
    r.data.forEach((d, i) => assert.ok(Math.abs(d.embedding[0] - fakeEmbedding(['one', 'two', 'three'][i])[0]) < 1e-6));
    assert.equal(up.requests.filter((q) => q.path === '/api/embeddings').length, 3);
    const bad = await raw(s, 'POST', '/v1/embeddings', JSON.stringify({ model: 'ollama:nomic-embed-text', input: [1, 2] }));
    assert.equal(bad.status, 400);
  } finally {
    await s.stop();
    await up.close();
  }
});

test('remote embeddings fall back only to a provider serving the same model', async () => {
  const a = await startFakeUpstream({ models: ['emb'] });
  const b = await startFakeUpstream({ models: ['other'] });
  const c = await startFakeUpstream({ models: ['emb'] });
  const providers = [
    { name: 'a', kind: 'openai', base_url: `${a.url}/v1`, models: ['emb'] },
    { name: 'b', kind: 'openai', base_url: `${b.url}/v1`, models: ['other'] },
    { name: 'c', kind: 'openai', base_url: `${c.url}/v1`, models: ['emb'] },
  ];
  const s = await remoteSetup({ providers, fallback: { enabled: true, chain: ['a', 'b', 'c'] } });
  try {
    a.setFault({ type: 'status', status: 500 });
    const r = await s.client.embeddings.create({ model: 'a:emb', input: 'hello', encoding_format: 'float' });
    assert.equal(r.data.length, 1);
    assert.equal(b.requests.filter((q) => q.path === '/v1/embeddings').length, 0, 'never another model');
    assert.equal(c.requests.filter((q) => q.path === '/v1/embeddings').length, 1);
    c.setFault({ type: 'status', status: 503 });
    const down = await raw(s, 'POST', '/v1/embeddings', JSON.stringify({ model: 'a:emb', input: 'hello' }));
    const e = specError(assert, down, 503, 'PROVIDER_UNAVAILABLE');
    assert.ok(e.details.a && e.details.c, JSON.stringify(e.details));
  } finally {
    await s.stop();
    for (const f of [a, b, c]) await f.close();
  }
});
