// Multi-model orchestration through the official openai SDK: each mode on
// real local models (stories260K under two ids, and a tiny random-weight
// Llama model the tests generate with tools/mkmodel) mixed with a remote
// member (a fake OpenAI-compatible upstream), the spec's response metadata, step events on a stream, the
// ensemble's min_agreement failure and the pipeline's partial answer.
//
// The models are tiny: what is tested is the orchestration — which models
// ran in which part, how many steps and rounds, the metadata's shape and
// values — not the quality of their prose.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, raw, specError, generateModel } from './helpers.mjs';
import { startFakeUpstream } from './fakes/upstream.mjs';

const servers = [];
const fakes = [];
after(async () => {
  for (const s of servers) await s.stop();
  for (const f of fakes) await f.close();
});

const MODELS = [
  { id: 'story-a', roles: ['primary'] },
  { id: 'story-b', roles: ['thinker'] },
  { id: 'tiny', file: generateModel({ shape: 'tiny-llama', type: 'Q8_0' }), roles: ['fast'] },
];
const msgs = [{ role: 'user', content: 'Once upon a time' }];
const base = { messages: msgs, max_tokens: 12, temperature: 0 };

async function brigade({ pool = 'story-a,story-b,tiny', env = {}, providers } = {}) {
  const srv = await startServer({
    models: MODELS,
    providers,
    env: { INFERENCE_ORCHESTRATION_MODELS: pool, ...env },
  });
  servers.push(srv);
  return srv;
}

async function upstream(opts = {}) {
  const f = await startFakeUpstream(opts);
  fakes.push(f);
  return f;
}

// The spec's two metadata blocks, checked for shape; returns them.
function metadata(r, mode) {
  const o = r.orchestration;
  assert.ok(o, 'orchestration present');
  assert.equal(o.mode, mode);
  assert.ok(Array.isArray(o.models_used) && o.models_used.length >= 1);
  assert.equal(typeof o.rounds, 'number');
  assert.ok(o.confidence === null || (o.confidence >= 0 && o.confidence <= 1), `confidence ${o.confidence}`);
  const m = r.inference_metadata;
  assert.ok(m, 'inference_metadata present');
  assert.equal(m.orchestration_mode, mode);
  assert.deepEqual(m.models_used, o.models_used);
  assert.equal(typeof m.handoff_steps, 'number');
  assert.equal(typeof m.compression_applied, 'boolean');
  assert.ok(m.context_utilization === null || (m.context_utilization >= 0 && m.context_utilization <= 1));
  return { o, m };
}

test('single mode carries the metadata too', async () => {
  const srv = await brigade();
  const r = await srv.client.chat.completions.create({ ...base, model: 'story-a' });
  const { o, m } = metadata(r, 'single');
  assert.deepEqual(o.models_used, ['story-a']);
  assert.equal(m.config, null);
  assert.equal(m.handoff_steps, 0);
});

test('critique: the generator, its critic, revisions; rounds bounded', async () => {
  const srv = await brigade({ env: { INFERENCE_CRITIQUE_MAX_ROUNDS: '2' } });
  const r = await srv.client.chat.completions.create({ ...base, model: 'story-a', orchestration_mode: 'critique' });
  const { o, m } = metadata(r, 'critique');
  assert.deepEqual(o.models_used, ['story-a', 'story-b']); // the thinker critiques
  // stories260K never writes "Score: N/10", so no early stop: 2 full rounds.
  assert.equal(o.rounds, 2);
  assert.equal(m.handoff_steps, 4);
  assert.equal(r.model, 'story-a');
  assert.equal(r.choices[0].finish_reason, 'stop');
  assert.ok(r.choices[0].message.content.length > 0);
  assert.ok(r.usage.completion_tokens > 12, 'usage counts every step');
});

test('debate with a remote participant; the primary reconciles', async () => {
  const up = await upstream({});
  const srv = await brigade({
    pool: 'story-a,up:fake-model',
    providers: [{ name: 'up', kind: 'openai', base_url: `${up.url}/v1`, models: ['fake-model'] }],
    env: { INFERENCE_DEBATE_MAX_ROUNDS: '2' },
  });
  const r = await srv.client.chat.completions.create({ ...base, model: 'story-a', orchestration_mode: 'debate' });
  const { o } = metadata(r, 'debate');
  assert.deepEqual(o.models_used, ['story-a', 'up:fake-model']);
  assert.equal(o.rounds, 2); // a story and the fake's greeting never agree
  assert.ok(o.agreement >= 0 && o.agreement < 1);
  assert.equal(r.model, 'story-a');
  const upstreamCalls = up.requests.filter((q) => q.method === 'POST');
  assert.equal(upstreamCalls.length, 2, 'the remote member answered in both rounds');
  assert.match(upstreamCalls[1].body.messages.at(-1).content, /Other assistants answered/);
});

test('ensemble: members vote; the majority answer and its agreement', async () => {
  const srv = await brigade({ env: { INFERENCE_ENSEMBLE_MIN_AGREEMENT: '0.5', INFERENCE_ENSEMBLE_SYNTHESIS_MODEL: 'none' } });
  const r = await srv.client.chat.completions.create({ ...base, model: 'story-a', orchestration_mode: 'ensemble' });
  const { o } = metadata(r, 'ensemble');
  assert.deepEqual(o.models_used, ['story-a', 'story-b', 'tiny']);
  // weighted_consensus (the default): story-a and story-b (the same
  // weights at temperature 0) agree and are sure of their tokens; the
  // random-weight model disagrees and is not (its tokens' probabilities
  // are ~1/32000), so the agreeing share of the weight is nearly all.
  assert.ok(o.agreement > 0.9, `agreement ${o.agreement}`);
  assert.ok(o.confidence > 0 && o.confidence <= 1);
  assert.ok(r.choices[0].message.content.length > 0);
  assert.equal(r.model, 'story-a'); // the first of the agreeing pair
});

test('ensemble with majority_vote: one member, one vote', async () => {
  const srv = await brigade({ env: { INFERENCE_ENSEMBLE_REDUCER: 'majority_vote', INFERENCE_ENSEMBLE_MIN_AGREEMENT: '0.5', INFERENCE_ENSEMBLE_SYNTHESIS_MODEL: 'none' } });
  const r = await srv.client.chat.completions.create({ ...base, model: 'story-a', orchestration_mode: 'ensemble' });
  const { o } = metadata(r, 'ensemble');
  assert.ok(o.agreement > 0.66 && o.agreement < 0.67, `agreement ${o.agreement}`);
});

test('ensemble below min_agreement fails with ORCHESTRATION_FAILED', async () => {
  const srv = await brigade({ pool: 'story-a,tiny', env: { INFERENCE_ENSEMBLE_REDUCER: 'majority_vote', INFERENCE_ENSEMBLE_MIN_AGREEMENT: '0.9' } });
  const res = await raw(srv, 'POST', '/v1/chat/completions', JSON.stringify({ ...base, model: 'story-a', orchestration_mode: 'ensemble' }));
  const e = specError(assert, res, 500, 'ORCHESTRATION_FAILED');
  assert.match(e.message, /did not agree/);
});

test('pipeline: fast drafts, thinker refines, the model validates', async () => {
  const srv = await brigade();
  const r = await srv.client.chat.completions.create({ ...base, model: 'story-a', orchestration_mode: 'pipeline' });
  const { o, m } = metadata(r, 'pipeline');
  assert.deepEqual(o.models_used, ['tiny', 'story-b', 'story-a']);
  assert.equal(m.handoff_steps, 2);
  assert.equal(r.choices[0].finish_reason, 'stop');
  assert.equal(o.partial, undefined);
});

test('pipeline saga: a failing last stage returns the refined text as partial', async () => {
  const up = await upstream({ fault: { type: 'status', status: 500, path: '/v1/chat' } });
  const srv = await brigade({
    pool: 'story-a,story-b,tiny,up:fake-model',
    providers: [{ name: 'up', kind: 'openai', base_url: `${up.url}/v1`, models: ['fake-model'] }],
  });
  // The request's model validates: the remote one, which fails (twice: the
  // retriable 502 gets one retry).
  const r = await srv.client.chat.completions.create({ ...base, model: 'up:fake-model', orchestration_mode: 'pipeline' });
  const { o } = metadata(r, 'pipeline');
  assert.equal(r.choices[0].finish_reason, 'partial');
  assert.equal(o.partial, true);
  assert.equal(o.completed_steps, 2);
  assert.match(o.error, /validate/);
  assert.ok(r.choices[0].message.content.length > 0);
  assert.equal(r.model, 'story-b'); // the refiner's text stands
});

test('a handoff over the next model\'s budget is compressed; failing that, never truncated', async () => {
  const srv = await startServer({
    models: [
      { id: 'story-a', roles: ['primary'] },
      { id: 'story-b', roles: ['thinker'], context_length: 256 },
      { id: 'story-c', roles: ['fast'] },
    ],
    env: { INFERENCE_ORCHESTRATION_MODELS: 'story-a,story-b,story-c' },
  });
  servers.push(srv);
  // A 120-token draft does not fit the critic's 256-token window's handoff
  // share; the fast model is asked to compress it three times, but a story
  // model only tells stories: COMPRESSION_FAILED, so the draft stands as a
  // partial answer instead of reaching the critic cut short.
  const stream = await srv.client.chat.completions.create({
    ...base, max_tokens: 120, model: 'story-a', orchestration_mode: 'critique', stream: true, stream_steps: true,
  });
  const steps = [];
  let last = null;
  for await (const chunk of stream) {
    if (chunk.orchestration_step) steps.push(`${chunk.orchestration_step.name}:${chunk.orchestration_step.model}`);
    else if (chunk.choices[0]?.finish_reason) last = chunk;
  }
  assert.deepEqual(steps, ['generate:story-a', 'compress:story-c', 'compress:story-c', 'compress:story-c']);
  assert.equal(last.choices[0].finish_reason, 'partial');
  assert.equal(last.orchestration.partial, true);
  assert.match(last.orchestration.error, /compress/i);
  assert.equal(last.inference_metadata.compression_applied, false);
  assert.ok(last.inference_metadata.context_utilization > 0);
});

test('self_consistency: one model, several samples, a vote', async () => {
  const srv = await brigade({ env: { INFERENCE_SELF_CONSISTENCY_SAMPLES: '4' } });
  const r = await srv.client.chat.completions.create({ ...base, temperature: 0.8, model: 'story-a', orchestration_mode: 'self_consistency' });
  const { o } = metadata(r, 'self_consistency');
  assert.deepEqual(o.models_used, ['story-a']);
  assert.ok(o.agreement > 0 && o.agreement <= 1);
});

test('streamed: step events when asked, then the answer as ordinary chunks', async () => {
  const srv = await brigade();
  const stream = await srv.client.chat.completions.create({
    ...base, model: 'story-a', orchestration_mode: 'pipeline', stream: true, stream_steps: true,
  });
  const steps = [];
  let text = '';
  let last = null;
  for await (const chunk of stream) {
    if (chunk.orchestration_step) {
      assert.deepEqual(chunk.choices, []);
      steps.push(chunk.orchestration_step);
      continue;
    }
    text += chunk.choices[0]?.delta?.content ?? '';
    if (chunk.choices[0]?.finish_reason) last = chunk;
  }
  assert.deepEqual(steps.map((s) => `${s.name}:${s.role}:${s.model}`), ['draft:drafter:tiny', 'refine:refiner:story-b', 'validate:validator:story-a']);
  assert.ok(steps.every((s) => typeof s.text === 'string' && s.elapsed_ms >= 0));
  assert.equal(text, steps[2].text, 'the final answer is the validator\'s text');
  assert.equal(last.choices[0].finish_reason, 'stop');
  metadata(last, 'pipeline');
});

test('without stream_steps a stream has no step events', async () => {
  const srv = await brigade();
  const res = await raw(srv, 'POST', '/v1/chat/completions', JSON.stringify({ ...base, model: 'story-a', orchestration_mode: 'critique', stream: true }));
  assert.equal(res.status, 200);
  assert.ok(!res.text.includes('orchestration.step'));
  assert.ok(res.text.trim().endsWith('data: [DONE]'));
});

test('bad orchestration requests are clear 400s', async () => {
  const srv = await brigade({ pool: 'story-a' });
  let e = specError(assert, await raw(srv, 'POST', '/v1/chat/completions', JSON.stringify({ ...base, model: 'story-a', orchestration_mode: 'debate' })), 400, 'INVALID_REQUEST');
  assert.match(e.message, /at least two models/);
  e = specError(assert, await raw(srv, 'POST', '/v1/chat/completions', JSON.stringify({ ...base, model: 'story-a', orchestration_mode: 'self_consistency', n: 2 })), 400, 'INVALID_REQUEST');
  assert.match(e.message, /n must be 1/);
  e = specError(assert, await raw(srv, 'POST', '/v1/chat/completions', JSON.stringify({ ...base, model: 'story-a', config: 'Z9' })), 400, 'INVALID_REQUEST');
  assert.match(e.message, /unknown preset/);
});
