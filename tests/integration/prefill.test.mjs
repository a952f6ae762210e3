// The prefill helper (docs/internals/engine.md) through the official openai
// SDK: on a 2-thread, 2-slot model, a long prompt that arrives while a
// stream decodes is prefilled on the helper's own context and thread, and
// its answer is exactly what a model without the helper gives.  The
// stream's own text is not compared whole: it decodes on one thread while
// the helper works, and llama.cpp's sums round differently with another
// thread count (a 1-thread and a 2-thread server part ways after ~300
// greedy tokens of stories260K, which has many near-ties).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startServer } from './helpers.mjs';

const STORY = 'Once upon a time, there was a little girl named Lily.';
const words = ['The', 'dog', 'ran', 'to', 'the', 'park', 'and', 'Lily', 'saw', 'a', 'big', 'red', 'ball', 'near', 'tree.'];
const LONG = `${STORY} ${Array.from({ length: 200 }, (_, i) => words[i % words.length]).join(' ')}`;
const model = (prefill_helper) => ({ id: 'stories', slots: 2, threads: 2, context_length: 1024, prefill_helper });

const streamText = async (srv, prompt, maxTokens, onChunk) => {
  let text = '', n = 0, usage;
  const s = await srv.client.completions.create({
    model: 'stories', prompt, max_tokens: maxTokens, temperature: 0, stream: true, stream_options: { include_usage: true },
  });
  for await (const c of s) {
    text += c.choices[0]?.text ?? '';
    if (c.usage) usage = c.usage;
    if (++n === 5) onChunk?.();
  }
  return { text, usage };
};
const answer = async (srv, prompt) =>
  (await srv.client.completions.create({ model: 'stories', prompt, max_tokens: 8, temperature: 0 })).choices[0].text;

test('a long prompt beside a stream goes to the prefill helper; its answer is unchanged', async (t) => {
  const srv = await startServer({ models: [model(true)], env: { INFERENCE_LOG_LEVEL: 'debug' } });
  t.after(() => srv.stop());
  const ref = await startServer({ models: [{ ...model(false), slots: 1 }] });
  t.after(() => ref.stop());
  // The stream is well under way when the long prompt is sent.
  let sent;
  const started = new Promise((r) => { sent = r; });
  const stream = streamText(srv, STORY, 900, () => sent());
  await started;
  const long = answer(srv, LONG);
  const [streamed, longAnswer] = await Promise.all([stream, long]);

  assert.equal(longAnswer, await answer(ref, LONG));
  assert.equal(streamed.usage.completion_tokens, 900);
  assert.ok(streamed.text.length > 900);
  const log = srv.stderr();
  assert.match(log, /prefill helper: takes slot \d's prompt, tokens \d+ to \d+/);
  assert.match(log, /prefill helper: slot \d back with (\d+ of \d+ prompt tokens|nothing new)/);
});

test('prefill_helper: false keeps every prompt in the scheduler', async (t) => {
  const srv = await startServer({ models: [model(false)], env: { INFERENCE_LOG_LEVEL: 'debug' } });
  t.after(() => srv.stop());
  let sent;
  const started = new Promise((r) => { sent = r; });
  const stream = streamText(srv, STORY, 100, () => sent());
  await started;
  await Promise.all([stream, answer(srv, LONG)]);
  assert.doesNotMatch(srv.stderr(), /prefill helper/);
});
