// Admission control and graceful shutdown (docs/admission.md) through the
// official openai SDK: the global limit and the bounded queue (429 with
// Retry-After), priority order, the end-to-end deadline in both phases,
// a queued client leaving the queue, and SIGTERM draining the server.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import { startServer } from './helpers.mjs';

const msgs = [{ role: 'user', content: 'Once upon a time' }];
// A request this long holds the 1-slot model for a second or more
// (stories260K slows down as its context fills: 1,000 tokens take ~1.4 s
// on 2 busy cores, 2,000 ~5 s; under valgrind a shorter one is long).
const LONG = Number(process.env.BRIGADE_TEST_LONG_TOKENS ?? 1500);
const model = { id: 'stories', slots: 1, context_length: 8192 };
// The deadline of the timeout test, in seconds.  The stream, the low- and
// the high-priority request must all have arrived before it passes; under
// valgrind that set-up alone can take more than 2 s.
const DEADLINE = Number(process.env.BRIGADE_TEST_DEADLINE_S ?? 2);

async function admission(srv) {
  const r = await fetch(`${srv.baseURL}/v1/health/inference`);
  return (await r.json()).admission;
}

// Reads a value until pred(value) holds, and returns it; every wait here is
// bounded (ms), and a timeout shows the last value read.
async function poll(read, pred, what, ms = 10000) {
  const t0 = Date.now();
  for (;;) {
    const v = await read();
    if (pred(v)) return v;
    if (Date.now() - t0 > ms) throw new Error(`timed out waiting for ${what}: ${typeof v === 'string' ? `\n${v}` : JSON.stringify(v)}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

// Polls until pred(admission) holds.
const until = (srv, pred, what, ms) => poll(() => admission(srv), pred, what, ms);

// The server's stderr once every id in 'ids' has its request log line.
const untilLogged = (srv, ids) => poll(() => srv.stderr(),
  (log) => ids.every((id) => log.includes(`"request_id":"${id}"`)), 'the request log lines');

const long = (srv, extra = {}, opts = {}) => srv.client.chat.completions.create(
  { model: 'stories', messages: msgs, max_tokens: LONG, temperature: 0, ...extra }, opts);
const short = (srv, extra = {}, opts = {}) => srv.client.chat.completions.create(
  { model: 'stories', messages: msgs, max_tokens: 4, ...extra }, opts);

test('30 requests at a 1-request server with a queue of 10: 19 get 429 with Retry-After, the rest complete', async (t) => {
  const srv = await startServer({
    models: [model],
    env: { INFERENCE_MAX_CONCURRENT_REQUESTS: '1', INFERENCE_QUEUE_SIZE: '10' },
  });
  t.after(() => srv.stop());
  const first = long(srv);
  await until(srv, (a) => a.running === 1, 'the first request to run');
  const flood = [...Array(29).keys()].map(() => short(srv).then((r) => ({ r }), (e) => ({ e })));
  // While the ten wait, /metrics counts them as the model's waiting requests.
  await until(srv, (a) => a.queued === 10, 'ten queued requests');
  const during = await (await fetch(`${srv.baseURL}/metrics`)).text();
  assert.match(during, /^brigade_num_requests_waiting\{model="stories"\} 10$/m);
  const results = [await first.then((r) => ({ r })), ...(await Promise.all(flood))];
  const limited = results.filter((x) => x.e);
  assert.equal(limited.length, 19, limited.map((x) => x.e.message).join('; '));
  for (const { e } of limited) {
    assert.equal(e.status, 429);
    assert.equal(e.code, 'RATE_LIMITED');
    assert.equal(e.type, 'retriable');
    assert.equal(e.error.provider, 'brigade');
    assert.equal(e.error.details.queue_size, 10);
    const retry = Number(e.headers.get('retry-after'));
    assert.ok(Number.isInteger(retry) && retry >= 1, `Retry-After ${e.headers.get('retry-after')}`);
  }
  const done = results.filter((x) => x.r);
  assert.equal(done.length, 11);
  for (const { r } of done) assert.ok(r.choices[0].message.content.length > 0);
  const a = await admission(srv);
  assert.deepEqual([a.running, a.queued, a.rejected, a.admitted], [0, 0, 19, 11]);
  assert.ok(a.avg_service_ms > 0);
  // /metrics saw the ten that waited behind the long one: eleven waits
  // observed (one of them ~0), together at least as long as that request.
  const text = await (await fetch(`${srv.baseURL}/metrics`)).text();
  const value = (name) => text.split('\n').filter((l) => l.startsWith(`${name}{`))
    .reduce((sum, l) => sum + Number(l.split(' ').pop()), 0);
  assert.equal(value('brigade_queue_wait_seconds_count'), 11, text);
  assert.ok(value('brigade_queue_wait_seconds_sum') > 0.05, text);
});

test('with the priority strategy, queued requests run highest priority first, FIFO within a level', async (t) => {
  const srv = await startServer({
    models: [model],
    env: { INFERENCE_MAX_CONCURRENT_REQUESTS: '1', INFERENCE_QUEUE_STRATEGY: 'priority', INFERENCE_LOG_LEVEL: 'info' },
  });
  t.after(() => srv.stop());
  assert.equal((await admission(srv)).strategy, 'priority');
  const blocker = long(srv);
  await until(srv, (a) => a.running === 1, 'the blocker to run');
  const prios = [1, 2, 3, 1, 3, 2, undefined /* the default: 2 */];
  const queued = [];
  for (const [i, priority] of prios.entries()) {
    const extra = priority === undefined ? {} : { priority };
    queued.push(short(srv, extra));
    await until(srv, (a) => a.queued === i + 1, `request ${i} to queue`); // arrival order is known
  }
  await blocker;
  const ids = (await Promise.all(queued)).map((r) => r.id);
  // The run order is the server's, not the order the answers reach this
  // process (two short answers can be read in one event-loop turn): each
  // request's log line is written before its slot is given to the next.
  const logged = await untilLogged(srv, ids);
  const order = ids.map((id, i) => [logged.indexOf(`"request_id":"${id}"`), i])
    .sort((a, b) => a[0] - b[0]).map(([, i]) => i);
  assert.deepEqual(order, [2, 4, 1, 5, 6, 0, 3]);
});

test('a priority outside the configured levels is 400 with param "priority"', async (t) => {
  const srv = await startServer({
    models: [model],
    env: { INFERENCE_PRIORITY_ENABLED: 'true', INFERENCE_PRIORITY_LEVELS: '2', INFERENCE_DEFAULT_PRIORITY: '1' },
  });
  t.after(() => srv.stop());
  await assert.rejects(short(srv, { priority: 3 }), (e) => {
    assert.equal(e.status, 400);
    assert.equal(e.code, 'INVALID_REQUEST');
    assert.equal(e.param, 'priority');
    return true;
  });
  assert.equal((await short(srv, { priority: 2 })).usage.completion_tokens, 4);
});

test('INFERENCE_REQUEST_TIMEOUT is end to end: 504 with the phase, streams end with an error event, the slot frees', async (t) => {
  const srv = await startServer({
    models: [model],
    env: { INFERENCE_MAX_CONCURRENT_REQUESTS: '1', INFERENCE_QUEUE_STRATEGY: 'priority', INFERENCE_REQUEST_TIMEOUT: String(DEADLINE) },
  });
  t.after(() => srv.stop());
  // 1. A stream that outlives the deadline: an error event, no [DONE].
  const streamed = fetch(`${srv.baseURL}/v1/chat/completions`, {
    method: 'POST', headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'stories', messages: msgs, max_tokens: 8000, temperature: 0, stream: true }),
  }).then(async (r) => ({ status: r.status, text: await r.text() }));
  await until(srv, (a) => a.running === 1, 'the stream to run');
  // 2. A low-priority request queued behind it, then 3. a high-priority
  // one that will take the slot first: 2 is still queued at its deadline.
  const queued = short(srv, { priority: 1 }).then(() => null, (e) => e);
  await until(srv, (a) => a.queued === 1, 'the low-priority request to queue');
  // 1 s later, so that 3 still has time left to be generating when the
  // stream's deadline frees the slot, even under valgrind.
  await new Promise((r) => setTimeout(r, 1000));
  const blocking = long(srv, { priority: 3, max_tokens: 8000 }).then(() => null, (e) => e);
  await until(srv, (a) => a.queued === 2, 'the high-priority request to queue');

  const s = await streamed;
  assert.equal(s.status, 200);
  const events = s.text.split('\n\n').filter((e) => e.startsWith('data: ')).map((e) => e.slice(6));
  assert.ok(events.length > 2, 'the stream had begun');
  assert.ok(!events.includes('[DONE]'), 'no [DONE] after a timeout');
  const err = JSON.parse(events.at(-1)).error;
  assert.equal(err.code, 'TIMEOUT');
  assert.equal(err.details.phase, 'generating');

  const q = await queued;
  assert.equal(q?.status, 504);
  assert.equal(q.code, 'TIMEOUT');
  assert.equal(q.error.details.phase, 'queued');
  assert.match(q.message, /queued/);

  const b = await blocking;
  assert.equal(b?.status, 504);
  assert.equal(b.error.details.phase, 'generating');
  assert.equal(b.error.details.timeout_s, DEADLINE);

  // The slot is free at once: a short request is fast, nothing is busy.
  const t0 = Date.now();
  assert.equal((await short(srv)).usage.completion_tokens, 4);
  assert.ok(Date.now() - t0 < 1500, `the next request took ${Date.now() - t0} ms`);
  assert.equal((await srv.client.models.retrieve('stories')).busy_slots, 0);
  const a = await admission(srv);
  assert.deepEqual([a.running, a.queued], [0, 0]);
});

test('a queued client that goes away leaves the queue at once and is never run', async (t) => {
  const srv = await startServer({ models: [model], env: { INFERENCE_MAX_CONCURRENT_REQUESTS: '1' } });
  t.after(() => srv.stop());
  const blocker = long(srv);
  await until(srv, (a) => a.running === 1, 'the blocker to run');
  const ac = new AbortController();
  const gone = short(srv, {}, { signal: ac.signal }).then(() => 'answered', (e) => e.constructor.name);
  await until(srv, (a) => a.queued === 1, 'the first waiter to queue');
  const next = short(srv);
  await until(srv, (a) => a.queued === 2, 'the second waiter to queue');
  ac.abort();
  const a = await until(srv, (x) => x.queued === 1, 'the aborted waiter to leave', 2000);
  assert.equal(a.running, 1, 'the blocker still runs: the waiter left while queued');
  assert.equal(await gone, 'APIUserAbortError');
  await blocker;
  assert.equal((await next).usage.completion_tokens, 4);
  // The slot is given back just after the reply is written: wait for it.
  const end = await until(srv, (x) => x.running === 0, 'the last slot to be given back');
  assert.deepEqual([end.running, end.queued, end.admitted], [0, 0, 2], 'the aborted request never ran');
});

test('a client that asks again the moment its answer ends finds the turn free (1 slot, no queue)', async (t) => {
  const srv = await startServer({
    models: [{ ...model, pooling: 'mean' }],
    env: { INFERENCE_MAX_CONCURRENT_REQUESTS: '1', INFERENCE_QUEUE_SIZE: '0' },
  });
  t.after(() => srv.stop());
  // With no queue a request that finds the slot taken is refused (429), so
  // a turn given back only after the answer went out shows here.  The
  // next request leaves in the very callback that saw the answer end.
  const chat = (extra) => ['/v1/chat/completions', { model: 'stories', messages: msgs, max_tokens: 1, ...extra }];
  const rounds = [];
  for (let i = 0; i < 100; i++)
    rounds.push(chat({}), chat({ stream: true }), ['/v1/embeddings', { model: 'stories', input: 'hi' }]);
  const answers = await backToBack(srv.port, rounds);
  const refused = answers.map((a, i) => [i, a]).filter(([, a]) => a.status !== 200);
  assert.deepEqual(refused.slice(0, 3), [], `${refused.length} of ${answers.length} refused`);
  assert.match(answers[1].body, /data: \[DONE\]/);
  assert.ok(JSON.parse(answers[2].body).data[0].embedding.length > 0);
  // The SDK on a fresh connection agrees, and the counts are exact.
  assert.equal((await short(srv)).usage.completion_tokens, 4);
  const a = await admission(srv);
  assert.deepEqual([a.running, a.queued, a.rejected, a.admitted], [0, 0, 0, rounds.length + 1]);
});

// Sends each [path, body] over two kept-alive connections in turn (a
// connection reads its next request only once its handler is done, so one
// would hide a late turn), the next request from the callback that read
// the end of the previous answer; resolves with every {status, body}.
function backToBack(port, requests) {
  return new Promise((resolve, reject) => {
    const answers = [];
    const socks = [0, 1].map(() => net.connect(port, '127.0.0.1'));
    let pending = Buffer.alloc(0);
    const send = () => {
      const [path, body] = requests[answers.length];
      const b = JSON.stringify(body);
      socks[answers.length % 2].write(`POST ${path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(b)}\r\n\r\n${b}`);
    };
    const finish = () => {
      for (const s of socks) { s.removeAllListeners('close'); s.destroy(); }
      resolve(answers);
    };
    let connected = 0;
    for (const [k, sock] of socks.entries()) {
      sock.on('connect', () => { if (++connected === 2) send(); });
      sock.on('error', reject);
      sock.on('close', () => reject(new Error(`connection ${k} closed after ${answers.length} answers`)));
      sock.on('data', (d) => {
        pending = Buffer.concat([pending, d]); // one request is out at a time
        const a = parseAnswer(pending);
        if (!a) return;
        answers.push(a);
        pending = pending.subarray(a.size);
        if (answers.length === requests.length) finish();
        else send();
      });
    }
  });
}

// One complete HTTP/1.1 answer at the start of buf, or null.
function parseAnswer(buf) {
  const head = buf.indexOf('\r\n\r\n');
  if (head < 0) return null;
  const lines = buf.subarray(0, head).toString().split('\r\n');
  const status = Number(lines[0].split(' ')[1]);
  const header = (n) => lines.find((l) => l.toLowerCase().startsWith(`${n}:`))?.split(':')[1].trim();
  let at = head + 4;
  if (header('content-length') !== undefined) {
    const end = at + Number(header('content-length'));
    return end > buf.length ? null : { status, body: buf.subarray(at, end).toString(), size: end };
  }
  let body = '';
  for (;;) { // chunked
    const eol = buf.indexOf('\r\n', at);
    if (eol < 0) return null;
    const n = parseInt(buf.subarray(at, eol).toString(), 16);
    if (eol + 2 + n + 2 > buf.length) return null;
    body += buf.subarray(eol + 2, eol + 2 + n).toString();
    at = eol + 2 + n + 2;
    if (n === 0) return { status, body, size: at };
  }
}

// A request on one kept-alive connection (the SDK's pool may open new ones).
function onConnection(agent, port, method, path, body) {
  return new Promise((resolve, reject) => {
    const r = http.request({ host: '127.0.0.1', port, method, path, agent, headers: { 'content-type': 'application/json' } }, (res) => {
      let text = '';
      res.on('data', (d) => { text += d; });
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, json: JSON.parse(text) }));
    });
    r.on('error', reject);
    r.end(body);
  });
}

// Whether a new TCP connection to the port is refused.
function refused(port) {
  return new Promise((resolve) => {
    const s = net.connect({ port, host: '127.0.0.1' });
    s.on('connect', () => { s.destroy(); resolve(false); });
    s.on('error', (e) => resolve(e.code === 'ECONNREFUSED'));
  });
}

test('SIGTERM mid-stream: new connections are refused, open ones get 503, the stream and the queued request finish, exit 0', async () => {
  const srv = await startServer({ models: [model], env: { INFERENCE_MAX_CONCURRENT_REQUESTS: '1' } });
  let exitedAt = 0;
  srv.proc.on('exit', () => { exitedAt = Date.now(); });
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  assert.equal((await onConnection(agent, srv.port, 'GET', '/health')).status, 200);
  const stream = await long(srv, { stream: true });
  const queued = short(srv);
  await until(srv, (a) => a.queued === 1, 'a request to queue behind the stream');
  let n = 0, finish, stopping, late, sawRefused = false;
  for await (const c of stream) {
    n++;
    finish = c.choices[0]?.finish_reason ?? finish;
    if (n === 3) stopping = srv.stop(); // SIGTERM
    if (stopping && !sawRefused && n % 20 === 0) sawRefused = await refused(srv.port);
    // A connection that was already open may still ask: 503 SHUTTING_DOWN.
    if (n === 100) {
      late = await onConnection(agent, srv.port, 'POST', '/v1/chat/completions',
        JSON.stringify({ model: 'stories', messages: msgs, max_tokens: 2 }));
    }
  }
  const done = Date.now();
  assert.equal(late.status, 503);
  assert.equal(late.json.error.code, 'SHUTTING_DOWN');
  assert.ok(Number(late.headers['retry-after']) >= 1);
  agent.destroy();
  assert.ok(n > 100, `the stream went on after SIGTERM (${n} chunks)`);
  assert.equal(finish, 'length', 'it ended normally (the SDK saw [DONE] without an error)');
  assert.ok(sawRefused, 'a new connection was refused during the grace period');
  assert.equal((await queued).usage.completion_tokens, 4, 'the queued request was served too');
  assert.equal(await stopping, 0);
  assert.ok(exitedAt >= done - 50, 'the process exited after the stream ended');
});

test('after the grace period, remaining work is cancelled and the exit is still 0', async () => {
  const srv = await startServer({
    models: [model],
    env: { INFERENCE_MAX_CONCURRENT_REQUESTS: '1', INFERENCE_SHUTDOWN_GRACE: '1' },
  });
  const running = long(srv, { max_tokens: 8000 }).then(() => 'answered', (e) => e.status ?? e.name);
  await until(srv, (a) => a.running === 1, 'the request to run');
  const queued = short(srv).then(() => 'answered', (e) => e.status ?? e.name);
  await until(srv, (a) => a.queued === 1, 'a request to queue');
  const t0 = Date.now();
  assert.equal(await srv.stop(), 0);
  assert.ok(Date.now() - t0 < 10000, 'it did not wait for the whole generation');
  assert.equal(await queued, 503, 'the waiter was refused: SHUTTING_DOWN');
  assert.equal(await running, 503, 'the cancelled generation: SHUTTING_DOWN too');
});
