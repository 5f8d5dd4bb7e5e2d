/**
 * `npm run bench:serving`: dynamic batching off and on under open-loop load,
 * the server's overhead against bare onnxruntime-node, and the response
 * cache at a 30% repeat rate, fairness across tenants, 20 reloads under load
 * (serving-run.ts); writes
 * test/bench/results/serving.{json,md,svg} (--quick: results/quick/).
 *
 *   npm run bench:serving -- [--quick] [--providers cuda,cpu] [--out DIR] [--note TEXT]...
 */
import path from 'node:path';
import { parseArgs } from 'node:util';
import { packageRoot } from '../../shared/paths.js';
import { writeServingResults } from './serving-report.js';
import { runServingBenchmark } from './serving-run.js';

const { values } = parseArgs({
  args: process.argv.slice(2),
  options: { quick: { type: 'boolean' }, providers: { type: 'string' }, out: { type: 'string' }, note: { type: 'string', multiple: true } },
});
const results = await runServingBenchmark({ quick: values.quick, notes: values.note, providers: values.providers?.split(',').map((p) => p.trim()) });
const resultsDir = path.join(packageRoot, 'test', 'bench', 'results');
const written = writeServingResults(values.out ?? (values.quick ? path.join(resultsDir, 'quick') : resultsDir), results);
for (const b of results.batching) console.log(`${b.model}: batching ${b.throughputOff} → ${b.throughputOn} req/s within p95 ${b.p95BoundMs} ms`);
for (const o of results.overhead) console.log(`${o.model} at batch ${o.batch}: server ${o.serverThroughput} rows/s, bare ${o.bareThroughput} rows/s`);
console.log(`cache: hit p99 ${results.cache.hitP99Us} µs server time; ${results.cache.throughputOff} → ${results.cache.throughputOn} req/s at ${results.cache.repeatRate * 100}% repeats`);
const f = results.fairness;
console.log(`fairness: tenant B p95 ${f.bAloneP95Ms} ms alone, ${f.bFloodedP95Ms} ms while A floods at 10× capacity; B errors ${f.bErrors}`);
console.log(`reload: ${results.reload.reloads} reloads under load, ${results.reload.failed} of ${results.reload.requests} requests failed`);
console.log(`wrote ${written.all.map((f) => path.relative(process.cwd(), f)).join(', ')}`);
