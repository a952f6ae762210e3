// Text integrity: a model with a real 32,000-token vocabulary and random
// weights emits byte-fallback tokens that split UTF-8 characters; streaming
// must deliver exactly the text the non-streaming answer has.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer } from './helpers.mjs';

let srv;
before(async () => {
  srv = await startServer({ models: [{ id: 'tiny', file: 'llama-2-tiny-random.gguf', slots: 2, context_length: 512 }] });
});
after(async () => { assert.equal(await srv.stop(), 0); });

const req = { model: 'tiny', messages: [{ role: 'user', content: 'Grüße, 世界 🌍' }], max_tokens: 200, temperature: 0 };

test('streamed text equals the non-streamed text, character for character', async () => {
  const whole = (await srv.client.chat.completions.create(req)).choices[0].message.content;
  assert.ok(whole.length > 0);
  let streamed = '', pieces = 0;
  for await (const c of await srv.client.chat.completions.create({ ...req, stream: true })) {
    const d = c.choices[0]?.delta?.content;
    if (d) { streamed += d; pieces++; }
  }
  assert.equal(streamed, whole);
  // A consumer that falls behind takes all the text that has arrived in one
  // delta (under valgrind the generating thread can run far ahead), so the
  // count of pieces is the scheduler's, not a fixed number: it only has to
  // be a stream.
  assert.ok(pieces > 1, `${pieces} pieces`);
});

test('multi-byte characters in the prompt are counted and survive', async () => {
  const r = await srv.client.completions.create({ model: 'tiny', prompt: '日本語のテキスト', max_tokens: 3, echo: true, temperature: 0 });
  assert.ok(r.choices[0].text.startsWith('日本語のテキスト'));
  assert.ok(r.usage.prompt_tokens >= 4);
});

test('a sampled stream at temperature 1 is valid text with the right count', async () => {
  const s = await srv.client.chat.completions.create({ ...req, temperature: 1, seed: 5, stream: true, stream_options: { include_usage: true } });
  let text = '', usage;
  for await (const c of s) { text += c.choices[0]?.delta?.content ?? ''; if (c.usage) usage = c.usage; }
  assert.equal(usage.completion_tokens, 200);
  // Lone surrogates would mean a character was split and re-encoded badly.
  assert.equal(text, text.toWellFormed());
});
