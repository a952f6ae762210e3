// Slots, continuous batching, cancellation on client disconnect, shutdown.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startServer } from './helpers.mjs';

const msgs = [{ role: 'user', content: 'Once upon a time' }];
// A generation long enough to measure against; under valgrind (make
// valgrind) a shorter one is already long.
const LONG = Number(process.env.BRIGADE_TEST_LONG_TOKENS ?? 1000);

async function busySlots(srv, id) {
  return (await srv.client.models.retrieve(id)).busy_slots;
}

test('8 concurrent streams on a 4-slot model all complete with the right counts', async (t) => {
  const srv = await startServer({ models: [{ id: 'stories', slots: 4, context_length: 512 }] });
  t.after(() => srv.stop());
  const one = async (i) => {
    const s = await srv.client.chat.completions.create({
      model: 'stories', messages: [{ role: 'user', content: `Story number ${i}` }],
      max_tokens: 24, stream: true, stream_options: { include_usage: true }, seed: i,
    });
    let text = '', finish, usage;
    for await (const c of s) {
      for (const ch of c.choices) { text += ch.delta?.content ?? ''; finish = ch.finish_reason ?? finish; }
      if (c.usage) usage = c.usage;
    }
    return { text, finish, usage };
  };
  const results = await Promise.all([...Array(8).keys()].map(one));
  for (const r of results) {
    assert.equal(r.finish, 'length');
    assert.equal(r.usage.completion_tokens, 24);
    assert.ok(r.text.length > 0);
  }
});

test('an aborted stream frees its slot: the next request on a 1-slot model starts at once', async (t) => {
  const srv = await startServer({ models: [{ id: 'stories', slots: 1, context_length: 8192 }] });
  t.after(() => srv.stop());
  // How long a long generation takes here (ASan builds are slower).
  const t0 = Date.now();
  await srv.client.chat.completions.create({ model: 'stories', messages: msgs, max_tokens: LONG, temperature: 0 });
  const full = Date.now() - t0;

  const ac = new AbortController();
  const s = await srv.client.chat.completions.create(
    { model: 'stories', messages: msgs, max_tokens: LONG, temperature: 0, stream: true },
    { signal: ac.signal },
  );
  let n = 0;
  // The SDK ends the iteration (or throws, by version) once aborted.
  try { for await (const _ of s) { if (++n === 5) ac.abort(); } } catch { /* aborted */ }
  assert.ok(n < 100, `stream stopped after the abort (${n} chunks)`);
  const t1 = Date.now();
  const next = await srv.client.chat.completions.create({ model: 'stories', messages: msgs, max_tokens: 5 });
  const waited = Date.now() - t1;
  assert.equal(next.usage.completion_tokens, 5);
  assert.ok(waited < full / 2, `next request took ${waited} ms; a full generation takes ${full} ms`);
  assert.equal(await busySlots(srv, 'stories'), 0);
});

test('a non-streaming client that disconnects is cancelled too', async (t) => {
  const srv = await startServer({ models: [{ id: 'stories', slots: 1, context_length: 8192 }] });
  t.after(() => srv.stop());
  const ac = new AbortController();
  const p = srv.client.chat.completions.create({ model: 'stories', messages: msgs, max_tokens: 4000, temperature: 0 }, { signal: ac.signal });
  for (let i = 0; i < 200 && (await busySlots(srv, 'stories')) === 0; i++) await new Promise((r) => setTimeout(r, 5));
  ac.abort();
  await assert.rejects(p);
  let busy = 1;
  for (let i = 0; i < 100 && busy; i++) { busy = await busySlots(srv, 'stories'); if (busy) await new Promise((r) => setTimeout(r, 10)); }
  assert.equal(busy, 0, 'slot freed after the client left');
});

test('SIGTERM during a stream longer than the grace period ends it, and the server exits 0', async () => {
  const srv = await startServer({
    models: [{ id: 'stories', slots: 1, context_length: 8192 }],
    env: { INFERENCE_SHUTDOWN_GRACE: '1' },
  });
  const s = await srv.client.chat.completions.create({ model: 'stories', messages: msgs, max_tokens: 8000, stream: true });
  let n = 0, stopping;
  try {
    for await (const _ of s) { if (++n === 3) stopping = srv.stop(); }
  } catch { /* the stream may end with an error event: that is fine */ }
  assert.equal(await stopping, 0);
});
