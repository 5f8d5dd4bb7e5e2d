/**
 * The README's first command: `splitinfer demo` starts a broker, the cloud
 * tier and an agent on loopback, sends its requests over MQTT and exits 0
 * only when every one was answered without errors.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import path from 'node:path';
import { test } from 'node:test';
import { packageRoot } from '../../shared/paths.js';

test('splitinfer demo answers every request: text, audio, OCR, both image encoders, a video chunk by chunk and a mixed request', { timeout: 180_000 }, async () => {
  const child = spawn(process.execPath, [path.join(packageRoot, 'dist', 'shared', 'cli.js'), 'demo'], { env: { ...process.env, SPLITINFER_LOG_LEVEL: 'warn' } });
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
  assert.equal(code, 0, output);
  assert.match(output, /all 9 requests answered/);
  assert.match(output, /chunk 0 in cloud: 0-3750 ms[^\n]*\n {4}chunk 1 in cloud: 4000-7750 ms/);
  assert.match(output, /2 chunks \(2 in cloud, 0 on edge\)[^\n]*cuts at 4000 ms/);
  assert.match(output, /in cloud {2}→ inception-v3: 2048-D embedding/);
  assert.match(output, /on edge {3}→ mobilenet-v2-int8: 1280-D embedding/);
  assert.match(output, /audio {2}on edge {3}→ speech at \d+-\d+ ms/);
  assert.match(output, /image {2}in cloud {2}→ "Invoice 2024-0042"/);
});
