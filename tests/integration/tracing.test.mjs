// OpenTelemetry tracing through the official openai SDK: a tiny OTLP/HTTP
// receiver (a node http server keeping every POST /v1/traces body) gets
// brigade's spans.  A client's W3C traceparent continues its trace: the
// request's SERVER span is its child, each provider call a CLIENT span
// below that, and a remote upstream (the fake) receives the CLIENT span's
// context.  Orchestrated requests have a span per step between the two; a
// request without traceparent starts a trace of its own, which the log
// line names.  A receiver that never answers slows no request.
//
// Under valgrind everything is slow: spans are polled for (20 s), models
// are stories260K and requests few and short.
import http from 'node:http';
import net from 'node:net';
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer } from './helpers.mjs';
import { startFakeUpstream } from './fakes/upstream.mjs';

const TRACE = '0af7651916cd43dd8448eb211c80319c';
const PARENT = 'b7ad6b7169203331';
const traceparent = (trace, span = PARENT) => `00-${trace}-${span}-01`;
const msgs = [{ role: 'user', content: 'Once upon a time' }];
const MODELS = [
  { id: 'story-a', roles: ['primary'] },
  { id: 'story-b', roles: ['thinker'] },
];

// Keeps every span POSTed to /v1/traces, with its resource's service.name.
async function startReceiver() {
  const spans = [];
  const server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (d) => { body += d; });
    req.on('end', () => {
      if (req.method === 'POST' && req.url === '/v1/traces' && req.headers['content-type'] === 'application/json') {
        for (const rs of JSON.parse(body).resourceSpans ?? []) {
          const service = rs.resource?.attributes?.find((a) => a.key === 'service.name')?.value?.stringValue;
          for (const ss of rs.scopeSpans ?? []) for (const s of ss.spans ?? []) spans.push({ ...s, service, scope: ss.scope?.name });
        }
      }
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end('{}');
    });
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  return { url: `http://127.0.0.1:${server.address().port}`, spans, close: () => new Promise((r) => server.close(r)) };
}

// Polls until get() returns something truthy (20 s at most).
async function until(get, what) {
  const t0 = Date.now();
  for (;;) {
    const v = await get();
    if (v) return v;
    if (Date.now() - t0 > 20000) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

const attr = (span, key) => {
  const v = span.attributes?.find((a) => a.key === key)?.value;
  return v?.stringValue ?? v?.intValue;
};
const ofTrace = (rcv, trace) => rcv.spans.filter((s) => s.traceId === trace);
const serverSpan = (spans) => spans.find((s) => s.kind === 2);

let rcv, up, srv;
const cleanups = [];
before(async () => {
  rcv = await startReceiver();
  up = await startFakeUpstream({ models: ['fake-model'] });
  srv = await startServer({
    models: MODELS,
    providers: [{ name: 'up', kind: 'openai', base_url: `${up.url}/v1`, models: ['fake-model'] }],
    env: {
      OTEL_EXPORTER_OTLP_ENDPOINT: rcv.url,
      OTEL_SERVICE_NAME: 'brigade-test',
      INFERENCE_ORCHESTRATION_MODELS: 'story-a,story-b',
      INFERENCE_LOG_LEVEL: 'info',
    },
  });
});
after(async () => {
  for (const c of cleanups.reverse()) await c();
  if (srv) assert.equal(await srv.stop(), 0, 'clean exit on SIGTERM');
  await up?.close();
  await rcv?.close();
});

test('a client traceparent continues: SERVER span, CLIENT span, and the upstream gets its context', async () => {
  const { data, response } = await srv.client.chat.completions
    .create({ model: 'up:fake-model', messages: msgs }, { headers: { traceparent: traceparent(TRACE) } })
    .withResponse();
  assert.equal(data.choices[0].message.content, 'Hello from the fake upstream.');
  const spans = await until(() => {
    const s = ofTrace(rcv, TRACE);
    return s.length >= 2 && s;
  }, 'the SERVER and CLIENT spans');
  const server = serverSpan(spans);
  assert.ok(server, JSON.stringify(spans));
  assert.equal(server.name, 'POST /v1/chat/completions');
  assert.equal(server.parentSpanId, PARENT);
  assert.equal(server.service, 'brigade-test');
  assert.equal(server.scope, 'brigade');
  assert.equal(attr(server, 'http.response.status_code'), '200');
  assert.equal(attr(server, 'brigade.request_id'), data.id);
  assert.ok(BigInt(server.endTimeUnixNano) >= BigInt(server.startTimeUnixNano));
  // The response names the trace and our span (W3C Trace Context level 2).
  assert.equal(response.headers.get('traceresponse'), traceparent(TRACE, server.spanId));

  const client = spans.find((s) => s.kind === 3);
  assert.ok(client, JSON.stringify(spans));
  assert.equal(client.name, 'provider up');
  assert.equal(client.parentSpanId, server.spanId);
  assert.equal(attr(client, 'brigade.provider'), 'up');
  assert.equal(attr(client, 'gen_ai.request.model'), 'fake-model');
  assert.equal(attr(client, 'brigade.outcome'), 'ok');
  const sent = up.requests.filter((r) => r.method === 'POST').at(-1);
  assert.equal(sent.headers.traceparent, traceparent(TRACE, client.spanId));
});

test('embeddings: a SERVER span and an embeddings CLIENT span, context upstream', async () => {
  const trace = 'e3b0c44298fc1c149afbf4c8996fb924';
  await srv.client.embeddings.create({ model: 'up:fake-model', input: 'hello' }, { headers: { traceparent: traceparent(trace) } });
  const spans = await until(() => {
    const s = ofTrace(rcv, trace);
    return s.length >= 2 && s;
  }, 'the embeddings spans');
  const server = serverSpan(spans);
  assert.equal(server.name, 'POST /v1/embeddings');
  const client = spans.find((s) => s.kind === 3);
  assert.equal(client.parentSpanId, server.spanId);
  assert.equal(attr(client, 'gen_ai.operation.name'), 'embeddings');
  const sent = up.requests.filter((r) => r.method === 'POST').at(-1);
  assert.equal(sent.path, '/v1/embeddings');
  assert.equal(sent.headers.traceparent, traceparent(trace, client.spanId));
});

test('without a traceparent a request starts a new trace, named in its log line', async () => {
  const before = new Set(rcv.spans.map((s) => s.traceId));
  const r = await srv.client.chat.completions.create({ model: 'story-a', messages: msgs, max_tokens: 4, temperature: 0 });
  const server = await until(() => rcv.spans.find((s) => s.kind === 2 && attr(s, 'brigade.request_id') === r.id), 'the SERVER span');
  assert.ok(!before.has(server.traceId), 'a trace of its own');
  assert.equal(server.parentSpanId ?? '', '');
  const client = await until(() => rcv.spans.find((s) => s.kind === 3 && s.parentSpanId === server.spanId), 'the CLIENT span');
  assert.equal(client.name, 'provider local');
  assert.equal(client.traceId, server.traceId);
  const line = await until(() => srv.stderr().split('\n').filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l)).find((j) => j.msg === 'request' && j.request_id === r.id), 'the log line');
  assert.equal(line.trace_id, server.traceId);
});

test('an orchestrated request has one span per step, between the request and its provider calls', async () => {
  const trace = '4bf92f3577b34da6a3ce929d0e0e4736';
  const r = await srv.client.chat.completions.create(
    { model: 'story-a', messages: msgs, max_tokens: 8, temperature: 0, orchestration_mode: 'critique' },
    { headers: { traceparent: traceparent(trace) } },
  );
  assert.equal(r.orchestration.mode, 'critique');
  // The SERVER span ends last: once it is in, so are the others (the
  // exporter sends spans in the order they ended).
  await until(() => serverSpan(ofTrace(rcv, trace)), 'the SERVER span');
  const spans = ofTrace(rcv, trace);
  const server = serverSpan(spans);
  assert.equal(attr(server, 'brigade.mode'), 'critique');
  const stepSpans = spans.filter((s) => s.name.startsWith('step '));
  assert.ok(stepSpans.length >= 2, spans.map((s) => s.name).join());
  assert.equal(spans.filter((s) => s.kind === 3).length, stepSpans.length, 'one provider call per step');
  for (const s of stepSpans) {
    assert.equal(s.kind, 1);
    assert.equal(s.parentSpanId, server.spanId);
    assert.ok(['story-a', 'story-b'].includes(attr(s, 'gen_ai.request.model')));
  }
  assert.ok(stepSpans.some((s) => s.name === 'step generate'), stepSpans.map((s) => s.name).join());
  assert.ok(stepSpans.some((s) => s.name === 'step critique'), stepSpans.map((s) => s.name).join());
  const stepIds = new Set(stepSpans.map((s) => s.spanId));
  for (const c of spans.filter((s) => s.kind === 3)) assert.ok(stepIds.has(c.parentSpanId), 'a provider call under its step');
});

test('/metrics counts the exported spans', async () => {
  const exported = await until(async () => {
    const text = await (await fetch(`${srv.baseURL}/metrics`)).text();
    const m = text.match(/^brigade_trace_spans_exported_total (\d+)$/m);
    return m && Number(m[1]) > 0 && text;
  }, 'exported spans in /metrics');
  assert.match(exported, /^brigade_trace_spans_dropped_total\{reason="queue_full"\} 0$/m);
});

// Accepts connections and never answers: an exporter that waited for it
// would hold each request for its whole timeout.
async function startBlackhole() {
  const sockets = new Set();
  const server = net.createServer((s) => { sockets.add(s); s.on('error', () => {}); s.on('close', () => sockets.delete(s)); });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${server.address().port}`,
    close: () => { for (const s of sockets) s.destroy(); return new Promise((r) => server.close(r)); },
  };
}

async function timeRequests(s, n) {
  const times = [];
  for (let i = 0; i < n; i++) {
    const t0 = Date.now();
    const r = await s.client.chat.completions.create({ model: 'up:fake-model', messages: msgs });
    assert.equal(r.choices[0].finish_reason, 'stop');
    times.push(Date.now() - t0);
    await new Promise((res) => setTimeout(res, 150)); // spread over more than one export interval
  }
  return times;
}

test('a receiver that never answers slows no request', async () => {
  const hole = await startBlackhole();
  cleanups.push(() => hole.close());
  const slow = await startServer({
    models: [], preload: [], waitReady: false,
    providers: [{ name: 'up', kind: 'openai', base_url: `${up.url}/v1`, models: ['fake-model'] }],
    env: { OTEL_EXPORTER_OTLP_ENDPOINT: hole.url },
  });
  cleanups.push(() => slow.stop());
  const base = await timeRequests(srv, 4);
  const times = await timeRequests(slow, 12);
  // The exporter's POSTs time out after 2 s each; a request that waited
  // for one would take that long at least.
  const worst = Math.max(...times), usual = Math.max(...base);
  assert.ok(worst < usual + 1500, `requests took ${times.join(', ')} ms; with a working receiver ${base.join(', ')} ms`);
  await until(async () => {
    const text = await (await fetch(`${slow.baseURL}/metrics`)).text();
    const m = text.match(/^brigade_trace_spans_dropped_total\{reason="export_failed"\} (\d+)$/m);
    return m && Number(m[1]) > 0;
  }, 'a failed export');
  assert.match(slow.stderr(), /tracing: \d+ spans not exported/);
});
