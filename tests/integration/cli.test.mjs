// The command line: help, verify, models, and start-up failures that must
// name what is wrong and exit with status 2.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { writeConfig } from './helpers.mjs';

const BIN = process.env.BRIGADE_BIN;
const run = (args, env = {}) => spawnSync(BIN, args, { encoding: 'utf8', env: { ...process.env, ...env }, timeout: 60000 });

test('--help lists the commands and exits 0', () => {
  const r = run(['--help']);
  assert.equal(r.status, 0);
  for (const word of ['serve', 'models', 'verify', '--config', 'INFERENCE_PORT', 'INFERENCE_MEMORY_BUDGET_MB',
    'INFERENCE_QUEUE_SIZE', 'GET /metrics', 'POST /v1/embeddings']) assert.match(r.stdout, new RegExp(word));
});

test('a config error names the file, the line and the key, and exits 2', () => {
  const dir = mkdtempSync(join(tmpdir(), 'brigade-cli-'));
  const path = join(dir, 'bad.yaml');
  writeFileSync(path, 'models:\n  m:\n    file: x.gguf\n    slots: many\n');
  const r = run(['serve', '--config', path]);
  assert.equal(r.status, 2);
  assert.match(r.stderr, new RegExp(`${path}:4: key 'models.m.slots'`));
});

test('a bad environment override is named and exits 2', () => {
  const r = run(['verify', '--config', writeConfig({ models: [{ id: 'stories' }] })], { INFERENCE_PORT: 'eighty' });
  assert.equal(r.status, 2);
  assert.match(r.stderr, /INFERENCE_PORT/);
});

test('a missing model file says where to put a GGUF file, and exits 2', () => {
  const r = run(['serve', '--config', writeConfig({ models: [{ id: 'gone', file: 'no-such-model.gguf' }] })]);
  assert.equal(r.status, 2);
  assert.match(r.stderr, /no-such-model\.gguf/);
  assert.match(r.stderr, /Put a \.gguf file there/);
});

test('verify and models report on the configured files', () => {
  const cfg = writeConfig({ models: [{ id: 'stories' }, { id: 'gone', file: 'no-such.gguf' }], preload: ['stories'] });
  const v = run(['verify', '--config', cfg]);
  assert.equal(v.status, 2, 'verify is strict about every file');
  const m = run(['models', '--config', cfg]);
  assert.equal(m.status, 0);
  assert.match(m.stdout, /stories\s+512\s+1\s+ok/);
  assert.match(m.stdout, /gone\s+512\s+1\s+absent/);
});

test('an unknown command or option is a usage error (2)', () => {
  assert.equal(run(['dance']).status, 2);
  assert.equal(run(['serve', '--bogus']).status, 2);
});
