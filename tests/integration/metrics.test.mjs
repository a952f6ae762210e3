// GET /metrics and the JSON request log line, through the official openai
// SDK against a real brigade serving stories260K: exact request counts per
// endpoint, model and status; token counters equal to the usage the SDK
// saw; one time-to-first-token sample per successful generation; output
// that promtool accepts; one log line per request, never with the prompt
// unless INFERENCE_LOG_PROMPTS=true.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { startServer, raw } from './helpers.mjs';
import { startFakeUpstream } from './fakes/upstream.mjs';

const SECRET = 'Zebra-quartz-7781 walks into the forest';
const TRACE = '4bf92f3577b34da6a3ce929d0e0e4736';
const CHAT = '/v1/chat/completions';

let srv;
before(async () => {
  srv = await startServer({
    models: [{ id: 'stories', pooling: 'mean', slots: 2, context_length: 256 }],
    env: { INFERENCE_LOG_LEVEL: 'info' },
  });
});
after(async () => { assert.equal(await srv?.stop(), 0, 'clean exit on SIGTERM'); });

// Prometheus text → Map of 'name{labels}' → number.
function parse(text) {
  const m = new Map();
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const i = line.lastIndexOf(' ');
    m.set(line.slice(0, i), Number(line.slice(i + 1)));
  }
  return m;
}

const requestLines = (stderr) => stderr.split('\n').filter((l) => l.startsWith('{'))
  .map((l) => JSON.parse(l)).filter((j) => j.msg === 'request');

// Polls until ok(value) or 15 s (slow under valgrind); returns the last value.
async function until(get, ok) {
  const t0 = Date.now();
  for (;;) {
    const v = await get();
    if (ok(v) || Date.now() - t0 > 15000) return v;
    await new Promise((r) => setTimeout(r, 20));
  }
}

// Streams end their request when the connection finishes: wait for the lines.
const waitLines = (server, n) => until(() => requestLines(server.stderr()), (l) => l.length >= n);

test('counts, tokens, TTFT, promtool and one log line per request', async () => {
  const messages = [{ role: 'user', content: SECRET }];
  const ids = [];
  let prompt = 0, completion = 0, chatPrompt = 0;
  for (let i = 0; i < 3; i++) {
    const r = await srv.client.chat.completions.create({ model: 'stories', messages, max_tokens: 6 + i },
      i === 0 ? { headers: { traceparent: `00-${TRACE}-00f067aa0ba902b7-01` } } : undefined);
    ids.push(r.id);
    prompt += r.usage.prompt_tokens;
    completion += r.usage.completion_tokens;
    chatPrompt = r.usage.prompt_tokens;
  }
  for (let i = 0; i < 2; i++) {
    const stream = await srv.client.chat.completions.create({
      model: 'local:stories', messages, max_tokens: 5, stream: true, stream_options: { include_usage: true },
    });
    for await (const c of stream) {
      if (c.usage) { prompt += c.usage.prompt_tokens; completion += c.usage.completion_tokens; ids.push(c.id); }
    }
  }
  const legacy = await srv.client.completions.create({ model: 'stories', prompt: SECRET, max_tokens: 4 });
  prompt += legacy.usage.prompt_tokens;
  completion += legacy.usage.completion_tokens;
  ids.push(legacy.id);
  const generated = prompt; // prompt tokens of the generations, not the embedding
  const emb = await srv.client.embeddings.create({ model: 'stories', input: SECRET });
  prompt += emb.usage.prompt_tokens;
  await assert.rejects(srv.client.chat.completions.create({ model: 'no-such-model', messages }),
    (e) => e.status === 404);

  const lines = await waitLines(srv, 8);
  const res = await fetch(`${srv.baseURL}/metrics`);
  assert.equal(res.status, 200);
  assert.equal(res.headers.get('content-type'), 'text/plain; version=0.0.4; charset=utf-8');
  const text = await res.text();
  const m = parse(text);
  const req = (endpoint, model, status) =>
    m.get(`brigade_requests_total{endpoint="${endpoint}",model="${model}",status="${status}"}`);
  assert.equal(req(CHAT, 'stories', 200), 5);
  assert.equal(req('/v1/completions', 'stories', 200), 1);
  assert.equal(req('/v1/embeddings', 'stories', 200), 1);
  assert.equal(req(CHAT, 'other', 404), 1);
  assert.ok(!text.includes('no-such-model'), 'a client-made name makes no series');
  assert.equal(m.get('brigade_prompt_tokens_total{model="stories"}'), prompt);
  assert.equal(m.get('brigade_generation_tokens_total{model="stories"}'), completion);
  assert.equal(m.get('brigade_time_to_first_token_seconds_count{model="stories"}'), 6);
  assert.equal(m.get('brigade_time_to_first_token_seconds_bucket{model="stories",le="+Inf"}'), 6);
  assert.equal(m.get(`brigade_request_duration_seconds_count{endpoint="${CHAT}",model="stories"}`), 5);
  assert.equal(m.get('brigade_model_loaded{model="stories"}'), 1);
  assert.ok(m.get('brigade_model_load_seconds{model="stories"}') >= 0);
  assert.equal(m.get('brigade_num_requests_running{model="stories"}'), 0);
  assert.equal(m.get('brigade_num_requests_waiting{model="stories"}'), 0);
  assert.equal(m.get('brigade_kv_cache_usage_perc{model="stories"}'), 0);
  assert.equal(m.get('brigade_provider_up{provider="local"}'), 1);
  // Every generation's prompt tokens were looked up in the KV cache once;
  // the four after the first chat repeat its prompt, so each reuses all of
  // it but the last token (always decoded, for the first sample's logits).
  assert.equal(m.get('brigade_prefix_cache_queries_total{model="stories"}'), generated);
  assert.ok(m.get('brigade_prefix_cache_hits_total{model="stories"}') >= 4 * (chatPrompt - 1),
    `hits ${m.get('brigade_prefix_cache_hits_total{model="stories"}')}, prompt ${chatPrompt}`);
  for (const name of ['prefix_cache_copies_total', 'prefill_helper_prompts_total', 'prefill_helper_tokens_total']) {
    assert.ok(m.get(`brigade_${name}{model="stories"}`) >= 0, name);
  }

  const lint = spawnSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8' });
  if (lint.error?.code === 'ENOENT') {
    console.log('# promtool not found (Debian package prometheus): lint skipped');
  } else {
    assert.equal(lint.status, 0, `promtool check metrics:\n${lint.stdout}${lint.stderr}`);
  }

  assert.equal(lines.length, 8, lines.map((l) => JSON.stringify(l)).join('\n'));
  for (const l of lines) {
    for (const k of ['ts', 'level', 'msg', 'request_id', 'method', 'path', 'model', 'mode', 'status',
      'prompt_tokens', 'completion_tokens', 'duration_ms', 'ttft_ms', 'trace_id']) {
      assert.ok(k in l, `${k} in ${JSON.stringify(l)}`);
    }
    assert.equal(l.level, 'info');
    assert.equal(l.method, 'POST');
  }
  const byId = new Map(lines.map((l) => [l.request_id, l]));
  for (const id of ids) assert.ok(byId.has(id), `a line for ${id}`);
  const first = byId.get(ids[0]);
  assert.equal(first.trace_id, TRACE);
  assert.equal(first.model, 'stories');
  assert.equal(first.mode, 'single');
  assert.equal(first.status, 200);
  assert.equal(first.path, CHAT);
  assert.ok(first.ttft_ms > 0 && first.ttft_ms <= first.duration_ms);
  assert.equal(byId.get(ids[1]).trace_id, null);
  const missing = lines.find((l) => l.status === 404);
  assert.equal(missing.model, 'no-such-model');
  assert.equal(missing.ttft_ms, null);
  assert.equal(lines.filter((l) => l.path === '/v1/embeddings').length, 1);
  assert.ok(!srv.stderr().includes('Zebra-quartz'), 'the prompt never reaches the log');
});

test('the engine counters go on across an unload and a reload', async () => {
  const counts = async () => {
    const m = parse(await (await fetch(`${srv.baseURL}/metrics`)).text());
    return { q: m.get('brigade_prefix_cache_queries_total{model="stories"}'),
      h: m.get('brigade_prefix_cache_hits_total{model="stories"}') };
  };
  const ask = () => srv.client.chat.completions.create({ model: 'stories', max_tokens: 4,
    messages: [{ role: 'user', content: 'Counters across a reload.' }] });
  const a = await ask();
  const before = await counts();
  assert.equal((await raw(srv, 'POST', '/v1/models/stories/unload')).status, 200);
  assert.deepEqual(await counts(), before, 'an unloaded model keeps its counts');
  assert.equal((await raw(srv, 'POST', '/v1/models/stories/load')).status, 200);
  const b = await ask();
  const after = await counts();
  // The new engine starts from nothing: the same prompt is decoded again,
  // and its tokens add to the old counts instead of replacing them.
  assert.equal(after.q, before.q + b.usage.prompt_tokens);
  assert.equal(after.h, before.h);
  assert.equal(a.usage.prompt_tokens, b.usage.prompt_tokens);
});

test('remote providers: fallbacks, in-flight sequences, health', async (t) => {
  const down = await startFakeUpstream({ fault: { type: 'status', status: 500 } });
  const good = await startFakeUpstream({ reply: 'one two three four five six', tokenDelayMs: 150 });
  t.after(() => Promise.all([down.close(), good.close()]));
  const provider = (name, f) => ({ name, kind: 'openai', base_url: `${f.url}/v1`, models: ['fake-model'] });
  const s = await startServer({
    models: [], preload: [], waitReady: false,
    providers: [provider('a', down), provider('b', good), { name: 'dead', kind: 'openai', base_url: 'http://127.0.0.1:9/v1' }],
    fallback: { enabled: true, chain: ['a', 'b'] },
  });
  t.after(() => s.stop());
  const scrape = async () => parse(await (await fetch(`${s.baseURL}/metrics`)).text());
  const messages = [{ role: 'user', content: 'hi' }];
  const r = await s.client.chat.completions.create({ model: 'a:fake-model', messages });
  assert.ok(r.choices[0].message.content.length > 0);
  let m = await scrape();
  assert.equal(m.get('brigade_fallbacks_total{from="a",to="b"}'), 1);
  assert.equal(m.get(`brigade_requests_total{endpoint="${CHAT}",model="a:fake-model",status="200"}`), 1);
  // A slow stream is in flight to b while we look.
  const stream = await s.client.chat.completions.create({ model: 'b:fake-model', messages, stream: true });
  const it = stream[Symbol.asyncIterator]();
  await it.next();
  m = await scrape();
  assert.equal(m.get('brigade_num_requests_running{model="b:fake-model"}'), 1);
  while (!(await it.next()).done);
  m = await until(scrape, (v) => v.get('brigade_num_requests_running{model="b:fake-model"}') === 0);
  assert.equal(m.get('brigade_num_requests_running{model="b:fake-model"}'), 0);
  m = await until(scrape, (v) => v.get('brigade_provider_up{provider="dead"}') === 0);
  assert.equal(m.get('brigade_provider_up{provider="dead"}'), 0);
  assert.equal(m.get('brigade_provider_up{provider="local"}'), 1);
});

test('/metrics needs the API key when one is set', async (t) => {
  const keyed = await startServer({ models: [{ id: 'stories' }], server: { api_key: 'sekrit' } });
  t.after(() => keyed.stop());
  assert.equal((await raw(keyed, 'GET', '/metrics')).status, 401);
  const ok = await raw(keyed, 'GET', '/metrics', undefined, { authorization: 'Bearer sekrit' });
  assert.equal(ok.status, 200);
  assert.match(ok.text, /^# HELP brigade_requests_total /m);
});

test('INFERENCE_LOG_PROMPTS=true logs the messages', async (t) => {
  const s = await startServer({
    models: [{ id: 'stories' }], env: { INFERENCE_LOG_LEVEL: 'info', INFERENCE_LOG_PROMPTS: 'true' },
  });
  t.after(() => s.stop());
  await s.client.chat.completions.create({ model: 'stories', messages: [{ role: 'user', content: SECRET }], max_tokens: 2 });
  const [line] = await waitLines(s, 1);
  assert.deepEqual(line.messages, [{ role: 'user', content: SECRET }]);
});
