/** Smoke test of `bench:serving`'s parts: its load generators against a real cloud tier, and its report's fields. */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { Client } from '@grpc/grpc-js';
import type { CloudServer } from '../../cloud/server.js';
import { seededRandom } from '../../shared/seeded-random.js';
import { servingMarkdown, servingSvg } from '../bench/serving-report.js';
import { closedLoop, openLoop, send, summarize } from '../bench/serving-load.js';
import type { ServingResults } from '../bench/serving-run.js';
import { inferenceClient, startTestCloud } from '../helpers/cloud.js';
import { pipelineRequest, textIntentOptions } from '../helpers/inference.js';

describe('serving benchmark (smoke)', textIntentOptions, () => {
  let cloud: { server: CloudServer; address: string };
  let client: Client;

  before(async () => {
    cloud = await startTestCloud({ models: ['text-intent'], batching: { 'text-intent': { maxBatchSize: 4 } }, cache: { bytes: 1 << 20 } });
    client = inferenceClient(cloud.address);
  });

  after(async () => {
    client?.close();
    await cloud?.server.drain(2_000);
  });

  test('open-loop and closed-loop load over gRPC give throughput, percentiles, batch sizes and cache hits', async () => {
    const sentences = ['Where is my order?', 'I want a refund.', 'Change my address please.'];
    const open = summarize(await openLoop(client, 40, 1_000, seededRandom(1), (i) => pipelineRequest('text-intent', `${sentences[i % 3]} #${i}`)), 40);
    assert.equal(open.errors, 0);
    assert.ok(open.requests > 20 && open.throughputPerS > 10, `answered ${open.requests} at ${open.throughputPerS}/s`);
    assert.ok(open.p50Ms <= open.p95Ms && open.p95Ms <= open.p99Ms);
    assert.ok(open.meanBatchSize >= 1);
    // Each sentence answered once before the loop: with three in flight, a
    // worker may otherwise ask for a sentence whose first answer is still running.
    for (const sentence of sentences) assert.equal((await send(client, pipelineRequest('text-intent', sentence))).cacheHit, false);
    const samples = await closedLoop(client, 3, 500, (i) => pipelineRequest('text-intent', sentences[i % 3]!));
    assert.ok(samples.length >= 3);
    assert.deepEqual(samples.filter((s) => s.cacheHit !== true), [], 'every request repeats an answered one');
  });

  test('the report carries the issue\'s fields and draws both curves', () => {
    const step = { offeredPerS: 10, requests: 30, errors: 0, throughputPerS: 9.8, p50Ms: 20, p95Ms: 40, p99Ms: 50, meanBatchSize: 2 };
    const results: ServingResults = {
      generatedAt: 'now',
      quick: true,
      setup: { providers: ['cpu'], cpus: 2, cpuModel: 'cpu', loadAverage: [1, 1, 1], node: 'v20', threads: 2, stepMs: 1000 },
      batching: [{ model: 'm', throughputOff: 9.8, throughputOn: 12, p95OffMs: 40, p95OnMs: 45, p95BoundMs: 100, settings: {}, ladderOff: [step], ladderOn: [step] }],
      overhead: [{ model: 'g', batch: 8, serverThroughput: 30, bareThroughput: 33, meanBatchSize: 8, rounds: [{ server: 30, bare: 33 }] }],
      cache: { model: 'm', hitP99Us: 400, hitP50Us: 50, hitAloneP99Us: 90, hitP99ClientMs: 1.2, repeatRate: 0.3, hitRate: 0.3, throughputOn: 14, throughputOff: 10, concurrency: 4 },
      fairness: {
        model: 'm',
        bAloneP95Ms: 40,
        bFloodedP95Ms: 48,
        bErrors: 0,
        capacityPerS: 10,
        bOfferedPerS: 3,
        aOfferedPerS: 100,
        bAlone: step,
        bFlooded: step,
        bFloodedWithoutTenants: { ...step, p95Ms: 900, errors: 3 },
        aAnswered: 25,
        aRefused: 900,
        rounds: 2,
        settings: { limits: { concurrencyPerModel: 2 }, auth: { tenants: { a: { maxQueued: 4 } } } },
      },
      timeSplit: [{ model: 'g', decodeMs: 4, resizeMs: 3, sessionMsBatch1: 30, sessionMsPerImageBatch8: 25 }],
      reload: { model: 't', reloads: 20, requests: 900, failed: 0, reloadMsP50: 40, reloadMsMax: 90, concurrency: 4, p95Ms: 12, failures: [] },
      notes: [],
    };
    const markdown = servingMarkdown(results);
    assert.match(markdown, /\| m \| 100 ms \| 9\.8 \| 40 ms \| 12 \| 45 ms \| 1\.22× \|/);
    assert.match(markdown, /\| 50 \/ 400 µs \| 90 µs \| 1\.2 ms \| 0\.3 \| 14 \| 10 \| 1\.40× \|/);
    assert.match(markdown, /\| 20 \| 900 \| 0 \| 40 \/ 90 ms \| 12 ms \|/);
    assert.match(markdown, /\| 40 ms \| 48 ms \| 1\.20× \| 0\/30 \| 20 \/ 20 ms \| 900 ms, 3\/30 \| 25 \| 900 \| `\{"limits":\{"concurrencyPerModel":2\},"tenants":\{"a":\{"maxQueued":4\}\}\}` \|/);
    assert.equal((servingSvg(results.batching).match(/<polyline/g) ?? []).length, 2);
  });
});
