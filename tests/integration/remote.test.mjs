// Remote providers: routing by prefix to OpenAI-compatible and Ollama
// upstreams (small fakes that speak the real wire protocols, with fault
// injection), a real brigade as another brigade's upstream, the fallback
// chain, circuit breakers, and cancellation crossing the proxy.
import http from 'node:http';
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { startServer, raw, specError } from './helpers.mjs';
import { startFakeUpstream } from './fakes/upstream.mjs';

const REPLY = 'Hello from the fake upstream.';
const msgs = [{ role: 'user', content: 'Say hello' }];
const cleanups = [];
after(async () => { for (const c of cleanups.reverse()) await c(); });

async function fake(opts = {}) {
  const f = await startFakeUpstream({ reply: REPLY, ...opts });
  cleanups.push(() => f.close());
  return f;
}

async function brigade(opts) {
  const s = await startServer({ models: [], preload: [], waitReady: false, ...opts });
  cleanups.push(() => s.stop());
  return s;
}

const openaiProvider = (name, f, extra = {}) => ({ name, kind: 'openai', base_url: `${f.url}/v1`, ...extra });
// Generation requests an upstream received (health checks are GETs).
const posts = (f) => f.requests.filter((r) => r.method === 'POST');

async function streamText(client, req) {
  let text = '';
  for await (const c of await client.chat.completions.create({ ...req, stream: true })) {
    text += c.choices[0]?.delta?.content ?? '';
  }
  return text;
}

test('a prefix routes to an OpenAI-compatible upstream, stream and not', async () => {
  const up = await fake({ models: ['m1'] });
  const srv = await brigade({ providers: [openaiProvider('vllm', up, { models: ['m1'] })] });
  const r = await srv.client.chat.completions.create({ model: 'vllm:m1', messages: msgs, max_tokens: 50 });
  assert.equal(r.choices[0].message.content, REPLY);
  assert.equal(r.choices[0].finish_reason, 'stop');
  assert.ok(r.usage.completion_tokens > 0);
  assert.equal(posts(up).at(-1).body.model, 'm1', 'the prefix is stripped before forwarding');
  assert.equal(await streamText(srv.client, { model: 'vllm:m1', messages: msgs }), REPLY);
  // A listed model routes without its prefix too, and /v1/models shows it.
  const plain = await srv.client.chat.completions.create({ model: 'm1', messages: msgs });
  assert.equal(plain.choices[0].message.content, REPLY);
  const ids = (await srv.client.models.list()).data.map((m) => m.id);
  assert.ok(ids.includes('vllm:m1'), ids.join());
});

test('sampling fields travel upstream; max_tokens gives finish_reason length', async () => {
  const up = await fake();
  const srv = await brigade({ providers: [openaiProvider('up', up)] });
  const r = await srv.client.chat.completions.create({ model: 'up:fake-model', messages: msgs, max_tokens: 2, temperature: 0.5, seed: 9, stop: ['zz'] });
  assert.equal(r.choices[0].finish_reason, 'length');
  const body = posts(up).at(-1).body; // a health check's GET may come after it
  assert.equal(body.max_tokens, 2);
  assert.equal(body.temperature, 0.5);
  assert.equal(body.seed, 9);
  assert.deepEqual(body.stop, ['zz']);
  assert.equal(body.stream, true);
});

test('an Ollama upstream is translated from and to the OpenAI format', async () => {
  const up = await fake({ kind: 'ollama', models: ['llama3.1:8b'] });
  const srv = await brigade({ providers: [{ name: 'ollama', kind: 'ollama', base_url: up.url }] });
  const r = await srv.client.chat.completions.create({ model: 'ollama:llama3.1:8b', messages: msgs });
  assert.equal(r.choices[0].message.content, REPLY);
  assert.ok(r.usage.completion_tokens > 0);
  assert.equal(posts(up).at(-1).path, '/api/chat');
  assert.equal(posts(up).at(-1).body.model, 'llama3.1:8b');
  assert.equal(await streamText(srv.client, { model: 'ollama:llama3.1:8b', messages: msgs }), REPLY);
});

test('a real pair: brigade serving stories260K upstream of another brigade', async () => {
  const a = await startServer({ models: [{ id: 'stories', slots: 2 }] });
  cleanups.push(() => a.stop());
  const b = await brigade({ providers: [{ name: 'edge', kind: 'openai', base_url: `${a.baseURL}/v1` }] });
  const req = { messages: [{ role: 'user', content: 'Once upon a time' }], max_tokens: 24, temperature: 0 };
  const direct = await a.client.chat.completions.create({ model: 'stories', ...req });
  const proxied = await b.client.chat.completions.create({ model: 'edge:stories', ...req });
  assert.equal(proxied.choices[0].message.content, direct.choices[0].message.content);
  assert.equal(proxied.usage.completion_tokens, 24);
  assert.equal(proxied.choices[0].finish_reason, 'length');
  assert.equal(await streamText(b.client, { model: 'edge:stories', ...req }), direct.choices[0].message.content);
});

test('the primary down: the next provider in the chain answers', async () => {
  const down = await fake();
  down.setFault({ type: 'status', status: 500 });
  const good = await fake();
  const srv = await brigade({
    providers: [openaiProvider('a', down, { models: ['fake-model'] }), openaiProvider('b', good, { models: ['fake-model'] })],
    fallback: { enabled: true, chain: ['a', 'b'] },
  });
  const r = await srv.client.chat.completions.create({ model: 'a:fake-model', messages: msgs });
  assert.equal(r.choices[0].message.content, REPLY);
  assert.equal(posts(down).length, 1);
  assert.equal(posts(good).length, 1);
  // Streaming falls back too: nothing had reached the client yet.
  assert.equal(await streamText(srv.client, { model: 'a:fake-model', messages: msgs }), REPLY);
});

test('refused connections and 429 fall back as well', async () => {
  const limited = await fake();
  limited.setFault({ type: 'status', status: 429, retryAfter: 1 });
  const good = await fake();
  const srv = await brigade({
    providers: [
      { name: 'gone', kind: 'openai', base_url: 'http://127.0.0.1:9/v1', models: ['fake-model'] },
      openaiProvider('limited', limited, { models: ['fake-model'] }),
      openaiProvider('good', good, { models: ['fake-model'] }),
    ],
    fallback: { enabled: true, chain: ['gone', 'limited', 'good'] },
  });
  const r = await srv.client.chat.completions.create({ model: 'gone:fake-model', messages: msgs });
  assert.equal(r.choices[0].message.content, REPLY);
});

test('all providers down: 503 whose details name each provider and its error', async () => {
  const a = await fake(); a.setFault({ type: 'status', status: 500 });
  const b = await fake(); b.setFault({ type: 'status', status: 503 });
  const srv = await brigade({
    providers: [openaiProvider('a', a, { models: ['fake-model'] }), openaiProvider('b', b, { models: ['fake-model'] })],
    fallback: { enabled: true, chain: ['a', 'b'] },
  });
  const res = await raw(srv, 'POST', '/v1/chat/completions', JSON.stringify({ model: 'a:fake-model', messages: msgs }));
  const e = specError(assert, res, 503, 'PROVIDER_UNAVAILABLE');
  assert.match(e.details.a, /500/);
  assert.match(e.details.b, /503/);
});

test('without a chain, upstream errors keep their meaning', async () => {
  const up = await fake();
  const srv = await brigade({ providers: [openaiProvider('up', up, { first_byte_timeout_ms: 300 })], breaker: { failures: 100, cooldown: 1 } });
  up.setFault({ type: 'status', status: 429, retryAfter: 2 });
  let e = specError(assert, await raw(srv, 'POST', '/v1/chat/completions', JSON.stringify({ model: 'up:fake-model', messages: msgs })), 429, 'RATE_LIMITED');
  assert.equal(e.details.provider, 'up');
  up.setFault({ type: 'status', status: 500 });
  specError(assert, await raw(srv, 'POST', '/v1/chat/completions', JSON.stringify({ model: 'up:fake-model', messages: msgs })), 502, 'UPSTREAM_ERROR');
  up.setFault({ type: 'slowFirstByte', ms: 2000 });
  specError(assert, await raw(srv, 'POST', '/v1/chat/completions', JSON.stringify({ model: 'up:fake-model', messages: msgs })), 504, 'UPSTREAM_TIMEOUT');
  up.setFault({ type: 'malformed' });
  e = specError(assert, await raw(srv, 'POST', '/v1/chat/completions', JSON.stringify({ model: 'up:fake-model', messages: msgs })), 502, 'UPSTREAM_ERROR');
  assert.match(e.message, /malformed/);
});

// Plain-http upstreams go through brigade's own HTTP/1.1 client unless a
// provider says http_client: curl; both must behave the same, on a fresh
// client connection and on a kept-alive one (the SDK's).
for (const http_client of ['builtin', 'curl']) {
  test(`the ${http_client} client: answers, errors, Retry-After and a cut stream`, async () => {
    const up = await fake({ reply: 'one two three four five six seven eight nine ten' });
    const srv = await brigade({ providers: [openaiProvider('up', up, { http_client, first_byte_timeout_ms: 300 })], breaker: { failures: 100, cooldown: 1 } });
    const body = (extra = {}) => JSON.stringify({ model: 'up:fake-model', messages: msgs, ...extra });
    for (let i = 0; i < 3; i++) {
      const r = await srv.client.chat.completions.create({ model: 'up:fake-model', messages: msgs });
      assert.equal(r.choices[0].message.content, 'one two three four five six seven eight nine ten');
      assert.equal(await streamText(srv.client, { model: 'up:fake-model', messages: msgs }), 'one two three four five six seven eight nine ten');
    }
    assert.equal(posts(up).at(-1).headers['content-type'], 'application/json');
    assert.equal(posts(up).at(-1).headers.accept, 'text/event-stream');
    up.setFault({ type: 'status', status: 429, retryAfter: 7 });
    let res = await raw(srv, 'POST', '/v1/chat/completions', body());
    specError(assert, res, 429, 'RATE_LIMITED');
    assert.equal(res.headers.get('retry-after'), '7');
    up.setFault({ type: 'status', status: 503 });
    specError(assert, await raw(srv, 'POST', '/v1/chat/completions', body()), 502, 'UPSTREAM_ERROR');
    up.setFault({ type: 'slowFirstByte', ms: 1500 });
    specError(assert, await raw(srv, 'POST', '/v1/chat/completions', body()), 504, 'UPSTREAM_TIMEOUT');
    up.setFault({ type: 'cutAfter', chunks: 3 });
    res = await raw(srv, 'POST', '/v1/chat/completions', body({ stream: true }));
    assert.equal(res.status, 200);
    assert.ok(!res.text.includes('[DONE]'), res.text);
    const events = res.text.split('\n\n').filter((l) => l.startsWith('data: ')).map((l) => JSON.parse(l.slice(6)));
    assert.equal(events.at(-1).error.code, 'UPSTREAM_ERROR');
    up.setFault({ type: 'refuse' });
    specError(assert, await raw(srv, 'POST', '/v1/chat/completions', body()), 502, 'UPSTREAM_ERROR');
    up.setFault(null);
    const r = await srv.client.chat.completions.create({ model: 'up:fake-model', messages: msgs });
    assert.equal(r.choices[0].finish_reason, 'stop', 'a good answer after the faults: no stale connection shows');
  });
}

// An upstream closes idle kept-alive connections (uvicorn after 5 s): a
// request on a connection it has just closed, or closed a while ago, still
// gets its answer, and the upstream sees each request exactly once.  (The
// first round closes nothing: no connection is open yet.)
for (const http_client of ['builtin', 'curl']) {
  test(`the ${http_client} client survives the upstream closing idle connections`, async () => {
    const up = await fake();
    const srv = await brigade({ providers: [openaiProvider('up', up, { http_client })], health: { interval: 3600, timeout: 1 }, env: { INFERENCE_LOG_LEVEL: 'debug' } });
    const ask = () => srv.client.chat.completions.create({ model: 'up:fake-model', messages: msgs });
    for (const pauseMs of [0, 0, 1500, 0]) {
      up.closeIdle();
      await new Promise((r) => setTimeout(r, pauseMs + 50)); // the FIN reaches brigade's socket
      const before = posts(up).length;
      const r = await ask();
      assert.equal(r.choices[0].message.content, REPLY, `after a ${pauseMs} ms pause`);
      assert.equal(posts(up).length, before + 1, `one upstream request after a ${pauseMs} ms pause`);
    }
    if (http_client === 'builtin') {
      // Both ways of finding out were taken: a send on a connection the
      // upstream had just closed, and a peek at one idle for over a second.
      assert.match(srv.stderr(), /closed a kept-alive connection; sending again/);
      assert.match(srv.stderr(), /closing an upstream connection idle for \d+ ms that the upstream closed/);
    }
  });
}

// Bodies larger than a socket buffer both ways (the request is sent in
// pieces as the socket drains; the answer takes many reads), and many at
// once sharing the provider's idle connections.
test('the builtin client carries large bodies and concurrent requests', async () => {
  const words = Array.from({ length: 800 }, (_, i) => ` w${i}`).join('');
  const up = await fake({ reply: `Start${words}` });
  const srv = await brigade({ providers: [openaiProvider('up', up)] });
  const big = 'x'.repeat(3 << 20);
  const r = await srv.client.chat.completions.create({ model: 'up:fake-model', messages: [{ role: 'user', content: big }], max_tokens: 10000 });
  assert.equal(r.choices[0].message.content, `Start${words}`);
  assert.equal(posts(up).at(-1).body.messages[0].content.length, big.length);
  const many = await Promise.all(Array.from({ length: 12 }, (_, i) =>
    streamText(srv.client, { model: 'up:fake-model', messages: [{ role: 'user', content: `q${i}` }], max_tokens: 10000 })));
  for (const text of many) assert.equal(text, `Start${words}`);
});

// libcurl sends plain-http requests through http_proxy (minding no_proxy);
// with a proxy set, the own client steps aside so that still holds.
test('http_proxy and no_proxy apply to plain-http upstreams', async () => {
  const up = await fake();
  const dead = 'http://127.0.0.1:1'; // a proxy that refuses every connection
  const proxied = await brigade({ providers: [openaiProvider('up', up)], env: { http_proxy: dead } });
  const before = posts(up).length;
  specError(assert, await raw(proxied, 'POST', '/v1/chat/completions', JSON.stringify({ model: 'up:fake-model', messages: msgs })), 502, 'UPSTREAM_ERROR');
  assert.equal(posts(up).length, before, 'the request went to the proxy, not around it');
  const exempt = await brigade({ providers: [openaiProvider('up', up)], env: { http_proxy: dead, no_proxy: '127.0.0.1' } });
  const r = await exempt.client.chat.completions.create({ model: 'up:fake-model', messages: msgs });
  assert.equal(r.choices[0].message.content, REPLY);
});

test('a stream cut midway ends with an error event and no [DONE]', async () => {
  const up = await fake({ reply: 'one two three four five six seven eight nine ten' });
  const good = await fake();
  const srv = await brigade({
    providers: [openaiProvider('up', up, { models: ['fake-model'] }), openaiProvider('good', good, { models: ['fake-model'] })],
    fallback: { enabled: true, chain: ['up', 'good'] },
  });
  up.setFault({ type: 'cutAfter', chunks: 3 });
  const res = await raw(srv, 'POST', '/v1/chat/completions', JSON.stringify({ model: 'up:fake-model', messages: msgs, stream: true }));
  assert.equal(res.status, 200);
  assert.ok(!res.text.includes('[DONE]'), res.text);
  const events = res.text.split('\n\n').filter((l) => l.startsWith('data: ')).map((l) => JSON.parse(l.slice(6)));
  assert.ok(events.some((ev) => ev.choices?.[0]?.delta?.content), 'some text streamed first');
  assert.equal(events.at(-1).error.code, 'UPSTREAM_ERROR');
  assert.equal(posts(good).length, 0, 'never switches once text has streamed');
  // The SDK surfaces it as an error, not as a complete answer.
  await assert.rejects(async () => {
    for await (const _ of await srv.client.chat.completions.create({ model: 'up:fake-model', messages: msgs, stream: true })) { /* drain */ }
  });
});

test('the breaker opens after repeated failures and recovers after the cool-down', async () => {
  const up = await fake();
  const srv = await brigade({
    providers: [openaiProvider('up', up)],
    breaker: { failures: 2, cooldown: 1 },
    health: { interval: 3600, timeout: 1 },
  });
  up.setFault({ type: 'status', status: 500 });
  const ask = () => raw(srv, 'POST', '/v1/chat/completions', JSON.stringify({ model: 'up:fake-model', messages: msgs }));
  specError(assert, await ask(), 502, 'UPSTREAM_ERROR');
  specError(assert, await ask(), 502, 'UPSTREAM_ERROR');
  const seen = posts(up).length;
  const open = specError(assert, await ask(), 503, 'PROVIDER_UNAVAILABLE');
  assert.match(open.message, /circuit open/);
  assert.equal(posts(up).length, seen, 'an open breaker does not touch the upstream');
  const health = await raw(srv, 'GET', '/v1/health/inference');
  assert.equal(health.json.providers.find((p) => p.name === 'up').state, 'open');
  up.setFault(null);
  await new Promise((r) => setTimeout(r, 1200));
  assert.equal((await ask()).status, 200, 'half-open after the cool-down; a success closes it');
});

test('health checks report each provider and bring a recovered one back', async () => {
  const up = await fake({ models: ['m1', 'm2'] });
  const srv = await brigade({
    models: [{ id: 'stories' }], preload: ['stories'], waitReady: true,
    providers: [openaiProvider('up', up, { models: ['m1'] }), { name: 'dead', kind: 'openai', base_url: 'http://127.0.0.1:9/v1' }],
    breaker: { failures: 1, cooldown: 3600 },
    health: { interval: 1, timeout: 1 },
  });
  let h;
  for (let i = 0; i < 50; i++) {
    h = (await raw(srv, 'GET', '/v1/health/inference')).json;
    if (h.providers.every((p) => p.checked_at || p.name === 'local')) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  const byName = Object.fromEntries(h.providers.map((p) => [p.name, p]));
  assert.equal(byName.local.state, 'healthy');
  assert.deepEqual(byName.local.models, ['stories']);
  assert.equal(byName.up.state, 'healthy');
  assert.ok(byName.up.latency_ms >= 0);
  assert.equal(byName.dead.state, 'unhealthy');
  assert.ok(byName.dead.last_error.length > 0);
  assert.equal(h.status, 'degraded');
  // A failure opens up's breaker (cool-down an hour); the next health check closes it.
  up.setFault({ type: 'status', status: 500, failNext: 1, path: '/v1/chat' });
  specError(assert, await raw(srv, 'POST', '/v1/chat/completions', JSON.stringify({ model: 'up:m1', messages: msgs })), 502, 'UPSTREAM_ERROR');
  let state;
  for (let i = 0; i < 40; i++) {
    state = (await raw(srv, 'GET', '/v1/health/inference')).json.providers.find((p) => p.name === 'up').state;
    if (state === 'healthy') break;
    await new Promise((r) => setTimeout(r, 100));
  }
  assert.equal(state, 'healthy');
  assert.equal((await raw(srv, 'POST', '/v1/chat/completions', JSON.stringify({ model: 'up:m1', messages: msgs }))).status, 200);
});

// Streams 3 chunks of a long answer, then aborts; resolves once aborted.
async function abortAfterThree(client) {
  const ac = new AbortController();
  const s = await client.chat.completions.create({ model: 'up:fake-model', messages: msgs, stream: true }, { signal: ac.signal });
  let n = 0;
  try { for await (const _ of s) { if (++n === 3) ac.abort(); } } catch { /* aborted */ }
}

test('a client that disconnects closes the upstream request at once', async () => {
  const up = await fake({ reply: 'word '.repeat(200), tokenDelayMs: 20 });
  const srv = await brigade({ providers: [openaiProvider('up', up)] });
  // A connection's first request: its transfer runs on the provider's I/O thread.
  await abortAfterThree(srv.client);
  let t0 = Date.now();
  await up.waitForClosedEarly(1, 2000);
  assert.ok(Date.now() - t0 < 1000);
  // A later request on a kept-alive connection: the HTTP thread runs the
  // transfer itself (docs/internals/http.md); the cancel must cross it too.
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  const modelsThenStream = (body, onChunk) => new Promise((resolve, reject) => {
    const req = http.request(`${srv.baseURL}/v1/models`, { agent }, (res) => { res.resume(); res.on('end', resolve); });
    req.on('error', reject);
    req.end();
  }).then(() => new Promise((resolve) => {
    const req = http.request(`${srv.baseURL}/v1/chat/completions`, { method: 'POST', agent, headers: { 'content-type': 'application/json' } }, (res) => {
      res.on('data', () => onChunk(req));
      res.on('close', resolve);
    });
    req.on('error', resolve); // our own destroy
    req.end(JSON.stringify(body));
  }));
  let chunks = 0;
  await modelsThenStream({ model: 'up:fake-model', messages: msgs, stream: true }, (req) => { if (++chunks === 3) req.destroy(); });
  agent.destroy();
  t0 = Date.now();
  await up.waitForClosedEarly(2, 2000);
  assert.ok(Date.now() - t0 < 1000);
});

// POSTs on one kept-alive client connection (node's http, one socket).
async function postOnOneConnection(srv, bodies) {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  const clientPorts = [];
  const texts = [];
  for (const b of bodies) {
    texts.push(await new Promise((resolve, reject) => {
      const req = http.request(`${srv.baseURL}/v1/chat/completions`, { method: 'POST', agent, headers: { 'content-type': 'application/json' } }, (res) => {
        clientPorts.push(req.socket.localPort);
        let t = '';
        res.setEncoding('utf8');
        res.on('data', (d) => { t += d; });
        res.on('end', () => resolve(t));
      });
      req.on('error', reject);
      req.end(JSON.stringify(b));
    }));
  }
  agent.destroy();
  return { clientPorts, texts };
}

test('requests on one kept-alive connection reuse one upstream connection', async () => {
  const up = await fake({});
  const srv = await brigade({ providers: [openaiProvider('up', up)] });
  const bodies = [0, 1, 2, 3, 4].map((i) => ({ model: 'up:fake-model', messages: msgs, stream: i % 2 === 1 }));
  const { clientPorts, texts } = await postOnOneConnection(srv, bodies);
  assert.equal(new Set(clientPorts).size, 1, 'the client kept one connection');
  assert.equal(JSON.parse(texts[0]).choices[0].message.content, REPLY);
  assert.ok(texts[1].includes('data: [DONE]'));
  const ports = posts(up).map((q) => q.remotePort);
  assert.equal(ports.length, 5);
  // The first went through the provider's shared I/O thread; the rest ran
  // on the connection's own thread, over one upstream connection.
  assert.equal(new Set(ports.slice(1)).size, 1, ports.join());
});

test('API keys go upstream and never show in errors, health or logs', async () => {
  const up = await fake({ apiKey: 'sk-very-secret' });
  const srv = await brigade({
    providers: [openaiProvider('up', up, { api_key_env: 'UP_KEY' })],
    env: { UP_KEY: 'sk-very-secret', INFERENCE_LOG_LEVEL: 'debug' },
  });
  const r = await srv.client.chat.completions.create({ model: 'up:fake-model', messages: msgs });
  assert.equal(r.choices[0].message.content, REPLY);
  assert.equal(up.requests.at(-1).headers.authorization, 'Bearer sk-very-secret');
  const wrong = await fake({ apiKey: 'sk-other' });
  const srv2 = await brigade({ providers: [openaiProvider('w', wrong, { api_key_env: 'W_KEY' })], env: { W_KEY: 'sk-very-secret' } });
  const e = specError(assert, await raw(srv2, 'POST', '/v1/chat/completions', JSON.stringify({ model: 'w:x', messages: msgs })), 502, 'UPSTREAM_AUTH_FAILED');
  assert.ok(!JSON.stringify(e).includes('sk-very-secret'));
  const h = await raw(srv, 'GET', '/v1/health/inference');
  assert.ok(!h.text.includes('sk-very-secret'));
  assert.ok(!srv.stderr().includes('sk-very-secret'));
  assert.ok(!srv2.stderr().includes('sk-very-secret'));
});

test('the spec variables alone define a provider; INFERENCE_PROVIDER takes unknown names', async () => {
  const up = await fake({ models: ['llama3.1:8b', 'some-model-only-vllm-knows'] });
  const srv = await brigade({
    env: { INFERENCE_PROVIDER: 'vllm', LOCAL_INFERENCE_URL: up.url, LOCAL_MODEL_NAME: 'llama3.1:8b' },
  });
  const r = await srv.client.chat.completions.create({ model: 'some-model-only-vllm-knows', messages: msgs });
  assert.equal(r.choices[0].message.content, REPLY);
  assert.equal(posts(up).at(-1).path, '/v1/chat/completions', 'LOCAL_INFERENCE_URL gained /v1');
  const ids = (await srv.client.models.list()).data.map((m) => m.id);
  assert.ok(ids.includes('vllm:llama3.1:8b'), ids.join());
});
