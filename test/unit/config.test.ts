import assert from 'node:assert/strict';
import { mkdtemp, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { parseBatchFlag } from '../../cloud/command.js';
import { loadCloudConfig } from '../../cloud/config.js';
import { loadEdgeConfig } from '../../edge/config.js';
import { resolveStateDir } from '../../edge/ingress/delivery-config.js';

async function tempFile(name: string, text: string): Promise<string> {
  const file = path.join(await mkdtemp(path.join(os.tmpdir(), 'splitinfer-config-')), name);
  await writeFile(file, text);
  return file;
}

test('defaults run on a CPU-only machine', () => {
  const config = loadCloudConfig();
  assert.deepEqual(config.providers, ['cpu']);
  assert.equal(config.port, 8001);
  assert.equal(config.limits.maxQueuePerModel, 64);
});

test('a YAML file is read and flags override it without wiping its other settings', async () => {
  const file = await tempFile('cloud.yaml', 'port: 9000\nproviders: [cuda, cpu]\nlimits:\n  maxQueuePerModel: 5\n  concurrencyPerModel: 3\n');
  const config = loadCloudConfig(file, { port: '9100', limits: { maxQueuePerModel: undefined, maxMessageBytes: '2048' } });
  assert.equal(config.port, 9100);
  assert.deepEqual(config.providers, ['cuda', 'cpu']);
  assert.equal(config.limits.maxQueuePerModel, 5);
  assert.equal(config.limits.concurrencyPerModel, 3);
  assert.equal(config.limits.maxMessageBytes, 2048);
});

test('a JSON file works too', async () => {
  const file = await tempFile('cloud.json', JSON.stringify({ host: '127.0.0.1', models: ['audio-vad'] }));
  const config = loadCloudConfig(file);
  assert.equal(config.host, '127.0.0.1');
  assert.deepEqual(config.models, ['audio-vad']);
});

test('unknown settings and bad values are refused with their path', async () => {
  const file = await tempFile('cloud.yaml', 'prot: 9000\n');
  assert.throws(() => loadCloudConfig(file), /additional properties/);
  assert.throws(() => loadCloudConfig(undefined, { providers: ['tpu'] }), /providers/);
  assert.throws(() => loadCloudConfig(undefined, { port: 'eighty' }), /port/);
  assert.throws(() => loadCloudConfig('/nonexistent/cloud.yaml'), /cannot be read/);
});

test('batching is off unless a model is named; --batch sets size and delay and the schema fills the rest', async () => {
  assert.deepEqual(loadCloudConfig().batching, {});
  assert.equal(loadCloudConfig().cache.bytes, 0);
  const file = await tempFile('cloud.yaml', 'batching:\n  text-intent:\n    preferredBatchSizes: [4]\n');
  const config = loadCloudConfig(file, { batching: parseBatchFlag('image-encoder=8:2000, text-intent=16'), cache: { bytes: '1048576' } });
  const levels = { priorityLevels: 0, defaultPriorityLevel: 0 };
  assert.deepEqual(config.batching['image-encoder'], { maxBatchSize: 8, maxQueueDelayUs: 2000, preferredBatchSizes: [], maxQueueSize: 64, ...levels });
  assert.deepEqual(config.batching['text-intent'], { maxBatchSize: 16, maxQueueDelayUs: 0, preferredBatchSizes: [4], maxQueueSize: 64, ...levels });
  assert.equal(config.cache.bytes, 1 << 20);
  assert.throws(() => parseBatchFlag('image-encoder:8'), /'image-encoder:8' is not MODEL=MAX_BATCH\[:DELAY_US\]/);
});

test('the shared cache tier is off unless a redis:// URL is given; anything else is refused', () => {
  assert.deepEqual(loadCloudConfig().cache.redis, { url: '', ttlS: 3600, maxEntryBytes: 4 << 20, timeoutMs: 50 });
  assert.equal(loadCloudConfig(undefined, { cache: { redis: { url: 'redis://cache:6379/2' } } }).cache.redis.url, 'redis://cache:6379/2');
  assert.throws(() => loadCloudConfig(undefined, { cache: { redis: { url: 'cache:6379' } } }), /cache\/redis\/url/);
});

test('tenants: quotas default to none, weight 1, and anonymous callers count as tenant default', async () => {
  const file = await tempFile('cloud.yaml', 'auth:\n  tenants:\n    acme: { requestsPerSecond: 20, burst: 40, maxQueued: 8, priority: 2, weight: 3 }\n    other: {}\n');
  const config = loadCloudConfig(file);
  assert.equal(config.auth.defaultTenant, 'default');
  assert.deepEqual(config.auth.tenants.acme, { models: [], requestsPerSecond: 20, burst: 40, maxConcurrent: 0, maxQueued: 8, priority: 2, weight: 3 });
  assert.deepEqual(config.auth.tenants.other, { models: [], requestsPerSecond: 0, burst: 0, maxConcurrent: 0, maxQueued: 0, priority: 0, weight: 1 });
  assert.throws(() => loadCloudConfig(undefined, { auth: { tenants: { acme: { weight: 0 } } } }), /weight/);
  assert.throws(() => loadCloudConfig(undefined, { auth: { tenants: { acme: { quota: 5 } } } }), /additional properties/);
  assert.deepEqual([loadCloudConfig().limits.priorityLevels, loadCloudConfig().limits.defaultPriorityLevel], [0, 0]);
});

test('delivery: the journal must hold two requests, and the state folder is the configured one or a writable default', () => {
  const config = loadEdgeConfig(undefined, { stateDir: 'var/state' });
  assert.equal(resolveStateDir(config.stateDir), path.resolve('var/state'));
  assert.deepEqual(config.delivery, { journalMaxBytes: 256 * 1024 * 1024, answerRetentionMs: 86_400_000, drainTimeoutMs: 10_000, answerQos: 2 });
  assert.throws(
    () => loadEdgeConfig(undefined, { delivery: { journalMaxBytes: 4 * 1024 * 1024 } }),
    /delivery\.journalMaxBytes \(4194304\) is under twice limits\.maxPayloadBytes \(8388608\)/,
  );
  const fallback = resolveStateDir('');
  assert.ok(fallback === '/var/lib/splitinfer' || fallback.endsWith(`${path.sep}splitinfer`), fallback);
});
