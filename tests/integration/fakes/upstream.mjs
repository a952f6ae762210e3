// A fake upstream LLM server for brigade's gateway/proxy integration tests.
//
// It speaks the real wire protocols (OpenAI/vLLM HTTP+SSE, or Ollama's native
// HTTP+NDJSON; chat, completions and embeddings) closely enough that the
// official `openai` SDK and an Ollama client accept it, and it can inject the
// faults a proxy has to survive:
// error statuses, refused connections, slow first bytes, streams cut in the
// middle, malformed stream lines and slow streams. It also counts the requests
// whose client went away before the response finished (`closedEarly`), which is
// how a test proves that brigade propagated a cancellation upstream.
//
// Only node:http and friends: no npm packages.
//
//   const fake = await startFakeUpstream({ kind: 'openai', models: ['m1'] });
//   ... point brigade at fake.url ...
//   fake.setFault({ type: 'status', status: 500, failNext: 3 });
//   await fake.waitForClosedEarly(1, 2000);
//   await fake.close();
import http from 'node:http';
import { createHash, randomBytes } from 'node:crypto';

const DEFAULTS = {
  kind: 'openai', // 'openai' | 'ollama'
  models: ['fake-model'],
  reply: 'Hello from the fake upstream.',
  tokenDelayMs: 0, // delay before each streamed content chunk
  apiKey: undefined, // if set: require `Authorization: Bearer <apiKey>`
  fault: null, // initial fault, same shape as setFault()
  strictModels: true, // unknown model -> 404; false accepts any model name
  embedDim: 8, // length of the fake's embeddings (openai's `dimensions` overrides it)
  // Models that exist but give no embeddings: openai kind answers 400,
  // ollama kind {"embedding": []} (what Ollama does for a chat model).
  nonEmbeddingModels: [],
};

const FAULT_TYPES = new Set(['status', 'refuse', 'slowFirstByte', 'cutAfter', 'malformed', 'slowStream']);

// ---------------------------------------------------------------------------
// Text helpers shared by both protocols
// ---------------------------------------------------------------------------

// Splits text into "word pieces" the way a tokenizer streams them: each piece
// carries its leading whitespace, so joining the pieces gives the text back
// exactly. "Hello from it." -> ["Hello", " from", " it."]
export function splitPieces(text) {
  return text.match(/\s*\S+|\s+$/g) ?? [];
}

// Word count, used as the fake's notion of "tokens" for prompts.
function countWords(text) {
  return (String(text ?? '').match(/\S+/g) ?? []).length;
}

// Text of a chat message content: a string, or an array of content parts.
function contentText(content) {
  if (typeof content === 'string') return content;
  if (Array.isArray(content)) {
    return content.map((p) => (typeof p === 'string' ? p : p?.text ?? '')).join(' ');
  }
  return '';
}

function messagesWordCount(messages) {
  return (messages ?? []).reduce((n, m) => n + countWords(contentText(m?.content)), 0);
}

// Cuts the reply before the earliest occurrence of any stop string.
function applyStop(text, stop) {
  const stops = (Array.isArray(stop) ? stop : stop != null ? [stop] : []).filter((s) => typeof s === 'string' && s !== '');
  let cut = text.length;
  for (const s of stops) {
    const i = text.indexOf(s);
    if (i !== -1 && i < cut) cut = i;
  }
  return text.slice(0, cut);
}

// What the fake "generates" for one request: the pieces to send and why it
// stopped. The stop strings cut first; then a token limit smaller than the
// number of pieces truncates to that many pieces with reason "length".
function generate(reply, { stop, maxTokens }) {
  const pieces = splitPieces(applyStop(reply, stop));
  if (Number.isInteger(maxTokens) && maxTokens >= 0 && maxTokens < pieces.length) {
    return { pieces: pieces.slice(0, maxTokens), finishReason: 'length' };
  }
  return { pieces, finishReason: 'stop' };
}

// `dim` (default 8) deterministic floats in [-1, 1] derived from the input (FNV-1a
// per dimension, seeded by the dimension index), normalized to unit length so
// they look like real embeddings. Same input -> same vector, different input ->
// different; a token-id array hashes as its JSON text ([1,2] differs from "1,2").
export function fakeEmbedding(text, dim = 8) {
  const s = typeof text === 'string' ? text : JSON.stringify(text);
  const v = [];
  for (let d = 0; d < dim; d++) {
    let h = (0x811c9dc5 ^ Math.imul(d + 1, 0x9e3779b1)) >>> 0;
    for (let i = 0; i < s.length; i++) {
      h ^= s.charCodeAt(i);
      h = Math.imul(h, 0x01000193) >>> 0;
    }
    v.push((h / 0xffffffff) * 2 - 1);
  }
  const norm = Math.hypot(...v) || 1;
  // Round through float32 so the float and base64 encodings carry the same values.
  return v.map((x) => Math.fround(x / norm));
}

// The fake's token count for an embeddings input: words of a text, ids of a
// token array.
export function fakeEmbedTokens(input) {
  return typeof input === 'string' ? countWords(input) : Array.isArray(input) ? input.length : 0;
}

// OpenAI's `encoding_format: "base64"` (the openai SDK's default): the
// little-endian float32 bytes, base64 encoded.
function embeddingBase64(vec) {
  const buf = Buffer.alloc(vec.length * 4);
  vec.forEach((x, i) => buf.writeFloatLE(x, i * 4));
  return buf.toString('base64');
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const nowSecs = () => Math.floor(Date.now() / 1000);
const randomId = (prefix) => `${prefix}-${randomBytes(12).toString('hex')}`;

// ---------------------------------------------------------------------------
// The server
// ---------------------------------------------------------------------------

export async function startFakeUpstream(opts = {}) {
  const cfg = { ...DEFAULTS, ...opts };
  if (cfg.kind !== 'openai' && cfg.kind !== 'ollama') throw new Error(`unknown fake kind: ${cfg.kind}`);
  const isOllama = cfg.kind === 'ollama';

  const requests = [];
  const sockets = new Set();
  let closedEarly = 0;
  let closeWaiters = []; // [{n, resolve, timer}]
  let shuttingDown = false;

  // The current fault. `remaining` is the failNext budget (Infinity when the
  // fault has no failNext and applies until replaced).
  let fault = null;
  function setFault(f) {
    if (f == null) {
      fault = null;
      return;
    }
    if (!FAULT_TYPES.has(f.type)) throw new Error(`unknown fault type: ${f.type}`);
    fault = { ...f, remaining: Number.isInteger(f.failNext) ? f.failNext : Infinity };
  }
  setFault(cfg.fault);

  // Takes the fault for this request (if any), spending one unit of failNext.
  // An optional `fault.path` (a path prefix) limits the fault to matching
  // requests, e.g. {type:'status', status:500, path:'/v1/chat'} keeps
  // /v1/models and /health healthy.
  function takeFault(path) {
    if (!fault || fault.remaining <= 0) return null;
    if (fault.path && !path.startsWith(fault.path)) return null;
    fault.remaining -= 1;
    const f = fault;
    if (fault.remaining <= 0) fault = null; // failNext spent: back to normal
    return f;
  }

  function noteClosedEarly() {
    closedEarly += 1;
    closeWaiters = closeWaiters.filter((w) => {
      if (closedEarly < w.n) return true;
      clearTimeout(w.timer);
      w.resolve(closedEarly);
      return false;
    });
  }

  function waitForClosedEarly(n, timeoutMs = 2000) {
    if (closedEarly >= n) return Promise.resolve(closedEarly);
    return new Promise((resolve, reject) => {
      const w = { n, resolve };
      w.timer = setTimeout(() => {
        closeWaiters = closeWaiters.filter((x) => x !== w);
        reject(new Error(`waitForClosedEarly(${n}): only ${closedEarly} after ${timeoutMs} ms`));
      }, timeoutMs);
      closeWaiters.push(w);
    });
  }

  const server = http.createServer((req, res) => {
    handle(req, res).catch((err) => {
      // A bug in the fake itself: answer 500 if still possible, never crash the test run.
      if (!res.headersSent && !res.destroyed) sendJson(res, 500, { error: { message: `fake upstream bug: ${err.message}`, type: 'server_error' } });
      else res.destroy();
    });
  });
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });

  // Per-request context: `gone` turns true when the client's socket closed
  // before the response finished (counted once in closedEarly), `cut` when the
  // fake destroyed the socket on purpose (a fault, not a client cancel).
  async function handle(req, res) {
    const ctx = { gone: false, cut: false };
    res.on('close', () => {
      if (res.writableFinished) return;
      ctx.gone = true; // stop generating, whoever closed the socket
      if (!ctx.cut && !shuttingDown) noteClosedEarly(); // only a client leaving counts
    });

    const url = new URL(req.url, 'http://x');
    const path = url.pathname;
    const f = takeFault(path);
    const record = { method: req.method, path, headers: req.headers, body: null, fault: f?.type ?? null, remotePort: req.socket.remotePort };

    // FAULT refuse: the upstream accepts the TCP connection and then drops it
    // without a byte of response (crashed worker, overloaded LB). A proxy must
    // treat this as a connection error (retry/fallback), not hang.
    if (f?.type === 'refuse') {
      requests.push(record);
      ctx.cut = true;
      req.socket.destroy();
      return;
    }

    const raw = await readBody(req);
    if (raw.length) {
      try {
        record.body = JSON.parse(raw);
      } catch {
        record.body = null;
      }
    }
    requests.push(record);
    if (ctx.gone) return;

    // FAULT slowFirstByte: nothing at all (not even headers) for `ms`, then a
    // normal response. Lets a proxy's connect/first-byte timeout fire; if the
    // proxy gives up and closes, the wait ends and closedEarly counts it.
    if (f?.type === 'slowFirstByte') {
      await waitOrGone(res, ctx, f.ms ?? 1000);
      if (ctx.gone) return;
    }

    // FAULT status: a plain HTTP error answer (500 crash, 503 overloaded, 429
    // rate limited), with Retry-After when given, so retry/backoff/circuit
    // breaker logic can be exercised. fault.body replaces the error JSON.
    if (f?.type === 'status') {
      const status = f.status ?? 500;
      const headers = f.retryAfter != null ? { 'retry-after': String(f.retryAfter) } : {};
      const body = f.body ?? (isOllama ? { error: statusMessage(status) } : openaiError(status));
      sendJson(res, status, body, headers);
      return;
    }

    // The health probe stays outside auth, like vLLM's /health.
    const publicPath = path === '/health' || (isOllama && (path === '/' || path === '/api/version'));
    if (cfg.apiKey !== undefined && !publicPath) {
      const auth = req.headers.authorization ?? '';
      if (auth !== `Bearer ${cfg.apiKey}`) {
        const body = isOllama
          ? { error: 'unauthorized' }
          : { error: { message: 'Incorrect API key provided.', type: 'invalid_request_error', param: null, code: 'invalid_api_key' } };
        sendJson(res, 401, body);
        return;
      }
    }

    // The stream shapers: how fast and how (in)completely a body is sent.
    const stream = {
      delayMs: f?.type === 'slowStream' ? f.ms ?? 100 : cfg.tokenDelayMs,
      cutAfter: f?.type === 'cutAfter' ? f.chunks ?? 1 : null,
      malformed: f?.type === 'malformed',
    };

    if (req.method === 'POST' && raw.length && record.body === null) {
      sendError(res, 400, 'Invalid JSON body');
      return;
    }
    const body = record.body ?? {};
    const route = `${req.method} ${path}`;
    if (isOllama) await routeOllama(route, path, body, res, ctx, stream);
    else await routeOpenAI(route, path, body, res, ctx, stream);
  }

  // ------------------------------------------------------------------ OpenAI

  async function routeOpenAI(route, path, body, res, ctx, stream) {
    if (route === 'GET /health') return sendJson(res, 200, { status: 'ok' });
    if (route === 'GET /v1/models') return sendJson(res, 200, { object: 'list', data: cfg.models.map(modelObject) });
    if (route.startsWith('GET /v1/models/')) {
      const id = decodeURIComponent(path.slice('/v1/models/'.length));
      if (!cfg.models.includes(id)) return sendError(res, 404, `The model \`${id}\` does not exist or you do not have access to it.`, 'model_not_found');
      return sendJson(res, 200, modelObject(id));
    }
    const endpoint = { 'POST /v1/chat/completions': 'chat', 'POST /v1/completions': 'text', 'POST /v1/embeddings': 'embed' }[route];
    if (!endpoint) return sendError(res, 404, `Unknown request URL: ${route}`, 'unknown_url');

    if (typeof body.model !== 'string') return sendError(res, 400, "you must provide a model parameter", 'missing_required_parameter', 'model');
    if (cfg.strictModels && !cfg.models.includes(body.model)) {
      return sendError(res, 404, `The model \`${body.model}\` does not exist or you do not have access to it.`, 'model_not_found');
    }
    if (endpoint === 'embed') return openaiEmbeddings(body, res, ctx, stream);
    if (endpoint === 'chat' && !Array.isArray(body.messages)) return sendError(res, 400, "'messages' is a required property", 'missing_required_parameter', 'messages');
    if (endpoint === 'text' && body.prompt == null) return sendError(res, 400, "'prompt' is a required property", 'missing_required_parameter', 'prompt');
    return openaiGenerate(endpoint, body, res, ctx, stream);
  }

  function modelObject(id) {
    return { id, object: 'model', created: 1700000000, owned_by: 'fake' };
  }

  // Chat completions and legacy text completions, streamed or not.
  async function openaiGenerate(endpoint, body, res, ctx, stream) {
    const chat = endpoint === 'chat';
    const n = Number.isInteger(body.n) && body.n > 0 ? body.n : 1;
    const maxTokens = body.max_completion_tokens ?? body.max_tokens;
    const { pieces, finishReason } = generate(cfg.reply, { stop: body.stop, maxTokens });
    const promptTokens = chat
      ? messagesWordCount(body.messages)
      : (Array.isArray(body.prompt) ? body.prompt : [body.prompt]).reduce((k, p) => k + countWords(typeof p === 'string' ? p : ''), 0);
    const id = randomId(chat ? 'chatcmpl' : 'cmpl');
    const created = nowSecs();
    const object = chat ? 'chat.completion' : 'text_completion';
    const usage = (completion) => ({ prompt_tokens: promptTokens, completion_tokens: completion, total_tokens: promptTokens + completion });
    const indexes = [...Array(n).keys()];

    if (!body.stream) {
      // Non-streamed: the "generation time" is the same as the stream's.
      await waitOrGone(res, ctx, stream.delayMs * pieces.length);
      if (ctx.gone) return;
      const text = pieces.join('');
      const choices = indexes.map((index) =>
        chat
          ? { index, message: { role: 'assistant', content: text, refusal: null }, logprobs: null, finish_reason: finishReason }
          : { index, text, logprobs: null, finish_reason: finishReason },
      );
      const out = { id, object, created, model: body.model, system_fingerprint: 'fp_fake', choices, usage: usage(pieces.length * n) };
      return sendBodyWithFaults(res, ctx, 200, 'application/json', JSON.stringify(out), stream);
    }

    // Streamed: SSE `data: {chunk}\n\n` events, one choice per chunk (OpenAI
    // sends the choices of n>1 as separate interleaved chunks), then [DONE].
    const includeUsage = body.stream_options?.include_usage === true;
    const chunkObject = chat ? 'chat.completion.chunk' : 'text_completion';
    const chunk = (choices, extra = {}) =>
      JSON.stringify({ id, object: chunkObject, created, model: body.model, system_fingerprint: 'fp_fake', choices, ...(includeUsage ? { usage: null } : {}), ...extra });
    const choice = (index, content, finish = null) =>
      chat
        ? { index, delta: content === null ? {} : content.role ? content : { content }, logprobs: null, finish_reason: finish }
        : { index, text: content ?? '', logprobs: null, finish_reason: finish };

    const events = []; // [{data, delay}]
    if (chat) for (const i of indexes) events.push({ data: chunk([choice(i, { role: 'assistant', content: '', refusal: null })]), delay: 0 });
    for (const p of pieces) for (const i of indexes) events.push({ data: chunk([choice(i, p)]), delay: i === 0 ? stream.delayMs : 0 });
    for (const i of indexes) events.push({ data: chunk([choice(i, null, finishReason)]), delay: 0 });
    if (includeUsage) events.push({ data: chunk([], { usage: usage(pieces.length * n) }), delay: 0 });

    await streamEvents(res, ctx, stream, {
      contentType: 'text/event-stream; charset=utf-8',
      events: events.map((e) => ({ ...e, data: `data: ${e.data}\n\n` })),
      goodEvents: chat ? n + 1 : 1,
      malformedLine: 'data: {not json\n\n',
      end: 'data: [DONE]\n\n',
    });
  }

  // Embeddings: float arrays, or base64 float32 when asked (the openai SDK
  // asks for base64 by default and decodes it). `input` is a string, an array
  // of token ids, or an array of either; `dimensions` sets the length. The
  // stream faults apply to the body too: slowStream delays it (so a cancel
  // can be seen closing the request), cutAfter cuts it in half, malformed
  // sends a 200 that is not JSON.
  async function openaiEmbeddings(body, res, ctx, stream) {
    const isIds = (x) => Array.isArray(x) && x.length > 0 && x.every((t) => Number.isInteger(t) && t >= 0);
    const isOne = (x) => (typeof x === 'string' && x !== '') || isIds(x);
    const inputs = isOne(body.input) ? [body.input] : body.input;
    if (!Array.isArray(inputs) || inputs.length === 0 || !inputs.every(isOne)) {
      return sendError(res, 400, "'input' must be a non-empty string, an array of token ids, or an array of those", 'invalid_value', 'input');
    }
    if (body.dimensions != null && !(Number.isInteger(body.dimensions) && body.dimensions > 0)) {
      return sendError(res, 400, "'dimensions' must be a positive integer", 'invalid_value', 'dimensions');
    }
    if (cfg.nonEmbeddingModels.includes(body.model)) {
      return sendError(res, 400, `The model \`${body.model}\` does not support embeddings.`, 'model_not_supported', 'model');
    }
    const dim = body.dimensions ?? cfg.embedDim;
    const base64 = body.encoding_format === 'base64';
    const data = inputs.map((inp, index) => {
      const vec = fakeEmbedding(inp, dim);
      return { object: 'embedding', index, embedding: base64 ? embeddingBase64(vec) : vec };
    });
    const tokens = inputs.reduce((k, x) => k + fakeEmbedTokens(x), 0);
    await waitOrGone(res, ctx, stream.delayMs);
    if (ctx.gone) return;
    const out = { object: 'list', data, model: body.model, usage: { prompt_tokens: tokens, total_tokens: tokens } };
    return sendBodyWithFaults(res, ctx, 200, 'application/json', JSON.stringify(out), stream);
  }

  // ------------------------------------------------------------------ Ollama

  // Ollama names carry a tag; "llama3" and "llama3:latest" are the same model.
  const tagged = (name) => (String(name).includes(':') ? String(name) : `${name}:latest`);
  const knownOllama = (name) => !cfg.strictModels || cfg.models.some((m) => tagged(m) === tagged(name));

  async function routeOllama(route, path, body, res, ctx, stream) {
    if (route === 'GET /' || route === 'HEAD /') return sendText(res, 200, 'Ollama is running');
    if (route === 'GET /health') return sendJson(res, 200, { status: 'ok' });
    if (route === 'GET /api/version') return sendJson(res, 200, { version: '0.6.0' });
    if (route === 'GET /api/tags') {
      return sendJson(res, 200, {
        models: cfg.models.map((name) => ({
          name,
          model: name,
          modified_at: '2024-01-01T00:00:00.000000000Z',
          size: 1000000,
          digest: createHash('sha256').update(name).digest('hex'),
          details: { parent_model: '', format: 'gguf', family: 'fake', families: ['fake'], parameter_size: '1M', quantization_level: 'Q8_0' },
        })),
      });
    }
    const endpoint = { 'POST /api/chat': 'chat', 'POST /api/generate': 'generate', 'POST /api/embeddings': 'embeddings', 'POST /api/embed': 'embed' }[route];
    if (!endpoint) return sendText(res, 404, '404 page not found');

    if (typeof body.model !== 'string' || body.model === '') return sendJson(res, 400, { error: 'model is required' });
    if (!knownOllama(body.model)) return sendJson(res, 404, { error: `model '${body.model}' not found` });

    // /api/embeddings: one text in "prompt", {"embedding": [...]} back with no
    // token count; a model that does not embed gives [] (as Ollama does).
    // /api/embed: the newer batch form. Stream faults apply as for openai.
    const isEmbedder = !cfg.nonEmbeddingModels.some((m) => tagged(m) === tagged(body.model));
    if (endpoint === 'embeddings') {
      if (typeof (body.prompt ?? '') !== 'string') return sendJson(res, 400, { error: 'json: cannot unmarshal array into Go struct field EmbeddingRequest.prompt of type string' });
      const embedding = isEmbedder ? fakeEmbedding(body.prompt ?? '', cfg.embedDim) : [];
      await waitOrGone(res, ctx, stream.delayMs);
      if (ctx.gone) return;
      return sendBodyWithFaults(res, ctx, 200, 'application/json; charset=utf-8', JSON.stringify({ embedding }), stream);
    }
    if (endpoint === 'embed') {
      if (!isEmbedder) return sendJson(res, 400, { error: `"${body.model}" does not support embeddings` });
      const inputs = Array.isArray(body.input) ? body.input : [body.input ?? ''];
      const count = inputs.reduce((k, x) => k + countWords(x), 0);
      const out = { model: body.model, embeddings: inputs.map((x) => fakeEmbedding(x, cfg.embedDim)), total_duration: 1000, load_duration: 100, prompt_eval_count: count };
      return sendBodyWithFaults(res, ctx, 200, 'application/json; charset=utf-8', JSON.stringify(out), stream);
    }
    return ollamaGenerate(endpoint, body, res, ctx, stream);
  }

  // /api/chat (message.content) and /api/generate (response), NDJSON or one JSON.
  async function ollamaGenerate(endpoint, body, res, ctx, stream) {
    const chat = endpoint === 'chat';
    const model = body.model;
    // Ollama answers an empty request by just loading the model.
    if (chat ? !Array.isArray(body.messages) || body.messages.length === 0 : !body.prompt) {
      const done = { model, created_at: new Date().toISOString(), done: true, done_reason: 'load' };
      return sendJson(res, 200, chat ? { ...done, message: { role: 'assistant', content: '' } } : { ...done, response: '' });
    }
    const o = body.options ?? {};
    const maxTokens = Number.isInteger(o.num_predict) && o.num_predict >= 0 ? o.num_predict : undefined;
    const { pieces, finishReason } = generate(cfg.reply, { stop: o.stop, maxTokens });
    const promptEval = chat ? messagesWordCount(body.messages) : countWords(body.prompt);
    const line = (content, extra = {}) =>
      JSON.stringify({
        model,
        created_at: new Date().toISOString(),
        ...(chat ? { message: { role: 'assistant', content } } : { response: content }),
        done: false,
        ...extra,
      });
    const final = (content) =>
      line(content, {
        done: true,
        done_reason: finishReason,
        ...(chat ? {} : { context: [1, 2, 3] }),
        total_duration: 1000000,
        load_duration: 100000,
        prompt_eval_count: promptEval,
        prompt_eval_duration: 100000,
        eval_count: pieces.length,
        eval_duration: 800000,
      });

    if (body.stream === false) {
      await waitOrGone(res, ctx, stream.delayMs * pieces.length);
      if (ctx.gone) return;
      return sendBodyWithFaults(res, ctx, 200, 'application/json; charset=utf-8', final(pieces.join('')), stream);
    }
    // Streamed (Ollama's default): one JSON object per line; the final
    // done:true line is the stream's terminator (there is no [DONE]).
    await streamEvents(res, ctx, stream, {
      contentType: 'application/x-ndjson',
      events: pieces.map((p) => ({ data: line(p) + '\n', delay: stream.delayMs })),
      malformedLine: '{not json\n',
      end: final('') + '\n',
    });
  }

  // ------------------------------------------------------- stream mechanics

  // Writes a stream's events with their delays, applying the stream faults:
  //  - FAULT cutAfter: after `chunks` events the socket is destroyed: no
  //    terminator ([DONE] / done:true), the chunked body never ends. Simulates
  //    an upstream dying mid-generation; the proxy must surface an error, not
  //    a truncated "successful" stream.
  //  - FAULT malformed: the first `goodEvents` events (one good chunk; for
  //    OpenAI chat the role chunk plus the first content chunk), then an
  //    unparsable line, then the terminator. Checks the proxy's parser
  //    rejects/handles garbage instead of forwarding it or crashing.
  //  - FAULT slowStream (via stream.delayMs): slow tokens, so that a client
  //    cancel mid-stream can be seen reaching the upstream (closedEarly).
  // Stops at once when the client goes away (ctx.gone).
  async function streamEvents(res, ctx, stream, { contentType, events, goodEvents = 1, malformedLine, end }) {
    res.writeHead(200, { 'content-type': contentType, 'cache-control': 'no-cache', connection: 'keep-alive', 'x-request-id': randomId('req') });
    res.flushHeaders();
    if (stream.malformed) {
      events = [...events.slice(0, goodEvents), { data: malformedLine, delay: 0 }];
    }
    let sent = 0;
    for (const ev of events) {
      if (stream.cutAfter !== null && sent >= stream.cutAfter) return cut(res, ctx);
      if (ev.delay > 0) await waitOrGone(res, ctx, ev.delay);
      if (ctx.gone) return;
      await write(res, ev.data);
      sent += 1;
    }
    if (stream.cutAfter !== null) return cut(res, ctx);
    if (ctx.gone) return;
    res.end(end);
  }

  // A non-streamed body under the stream faults: cutAfter sends the headers
  // and half the body then drops the connection; malformed sends a 200 whose
  // body is not JSON.
  async function sendBodyWithFaults(res, ctx, status, contentType, text, stream) {
    if (stream.malformed) text = '{not json';
    res.writeHead(status, { 'content-type': contentType, 'x-request-id': randomId('req') });
    if (stream.cutAfter !== null) {
      await write(res, text.slice(0, Math.floor(text.length / 2)));
      return cut(res, ctx);
    }
    res.end(text);
  }

  // Destroys the socket on purpose once what was written has been flushed.
  function cut(res, ctx) {
    ctx.cut = true;
    res.socket?.destroy();
  }

  // res.write that resolves once the data is handed to the kernel (so a cut
  // right after does not lose it). Resolves immediately if the client left.
  function write(res, data) {
    return new Promise((resolve) => {
      if (res.destroyed) return resolve();
      res.once('close', resolve);
      res.write(data, () => {
        res.off('close', resolve);
        resolve();
      });
    });
  }

  // Waits ms, but wakes up early when the client closes its socket.
  function waitOrGone(res, ctx, ms) {
    if (!(ms > 0) || ctx.gone || res.destroyed) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      res.once('close', done);
      function done() {
        clearTimeout(timer);
        res.off('close', done);
        resolve();
      }
    });
  }

  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  const { port } = server.address();

  return {
    port,
    url: `http://127.0.0.1:${port}`,
    kind: cfg.kind,
    requests,
    setFault,
    get closedEarly() {
      return closedEarly;
    },
    waitForClosedEarly,
    // Closes every kept-alive connection that is idle now, as a server
    // does when its keep-alive timeout runs out (uvicorn's is 5 s).
    closeIdle() {
      server.closeIdleConnections();
    },
    async close() {
      shuttingDown = true;
      for (const w of closeWaiters) {
        clearTimeout(w.timer);
      }
      closeWaiters = [];
      const closed = new Promise((r) => server.close(() => r()));
      for (const s of sockets) s.destroy();
      await closed;
    },
  };
}

// ---------------------------------------------------------------------------
// Small response helpers
// ---------------------------------------------------------------------------

function readBody(req) {
  return new Promise((resolve) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    // Client went away mid-body: whatever arrived (the close handler counts it).
    req.on('error', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('close', () => resolve(Buffer.concat(chunks).toString('utf8')));
  });
}

function sendJson(res, status, obj, headers = {}) {
  if (res.destroyed) return;
  const text = JSON.stringify(obj);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), 'x-request-id': randomId('req'), ...headers });
  res.end(text);
}

function sendText(res, status, text) {
  if (res.destroyed) return;
  res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

// OpenAI-style error answer.
function sendError(res, status, message, code = null, param = null) {
  const type = status >= 500 ? 'server_error' : 'invalid_request_error';
  sendJson(res, status, { error: { message, type, param, code } });
}

function statusMessage(status) {
  if (status === 429) return 'Rate limit reached for requests. Please try again later.';
  if (status === 503) return 'The server is overloaded or not ready yet.';
  return http.STATUS_CODES[status] ?? `HTTP ${status}`;
}

// The error body OpenAI sends for injected statuses.
function openaiError(status) {
  const type = status === 429 ? 'requests' : status >= 500 ? 'server_error' : 'invalid_request_error';
  const code = status === 429 ? 'rate_limit_exceeded' : null;
  return { error: { message: statusMessage(status), type, param: null, code } };
}
