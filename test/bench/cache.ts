/**
 * `npm run bench:cache`: content-addressed offload off and on over an
 * emulated link, uplink bytes and latency on workloads with repeats
 * (cache-run.ts); writes test/bench/results/cache.{json,md} (--quick: results/quick/).
 *
 *   npm run bench:cache -- [--quick] [--out DIR]
 */
import path from 'node:path';
import { parseArgs } from 'node:util';
import { packageRoot } from '../../shared/paths.js';
import { runCacheBenchmark, type CacheBenchResults } from './cache-run.js';
import { runBenchmarkMain } from './processes.js';
import { writeBenchFiles } from './write-results.js';

function markdown(r: CacheBenchResults): string {
  const kb = (bytes: number) => `${Math.round(bytes / 1024)} KiB`;
  const lines = [
    '# bench:cache: content-addressed offload',
    '',
    `${r.generatedAt}${r.quick ? ' (quick run)' : ''}; ${r.setup.cpus} CPUs (${r.setup.cpuModel}), load average at the end ${r.setup.loadAverage.join(' / ')}, Node ${r.setup.node}.`,
    '',
    `Link (userspace emulator): ${r.link.uplinkMbps} Mbit/s up, ${r.link.downlinkMbps} Mbit/s down, ${r.link.rttMs} ms RTT. Cloud: ${r.model}, response cache on, cold at the start of each side.`,
    'Off: every input is uploaded (the cloud still answers repeats from its cache). On: the edge asks by digest first where that pays (see the README).',
    '',
    '| workload | requests | repeats | uplink off | uplink on | saved | p50 off / on | p95 off / on | asked by digest (found) | errors off / on |',
    '| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |',
    ...r.workloads.map(
      (w) =>
        `| ${w.workload} | ${w.requests} | ${Math.round(w.repeatRate * 100)}% | ${kb(w.off.uplinkBytes)} | ${kb(w.on.uplinkBytes)} | ${Math.round(w.uplinkSaved * 100)}% | ` +
        `${w.off.p50Ms} / ${w.on.p50Ms} ms | ${w.off.p95Ms} / ${w.on.p95Ms} ms | ${w.on.askedByDigest} (${w.on.foundByDigest}) | ${w.off.errors} / ${w.on.errors} |`,
    ),
    '',
  ];
  return lines.join('\n');
}

runBenchmarkMain(async () => {
  const { values } = parseArgs({ args: process.argv.slice(2), options: { quick: { type: 'boolean' }, out: { type: 'string' } } });
  const results = await runCacheBenchmark({ quick: values.quick });
  const resultsDir = path.join(packageRoot, 'test', 'bench', 'results');
  const written = writeBenchFiles(values.out ?? (values.quick ? path.join(resultsDir, 'quick') : resultsDir), 'cache', results, markdown(results));
  for (const w of results.workloads) console.log(`${w.workload}: uplink ${w.off.uplinkBytes} → ${w.on.uplinkBytes} bytes (${Math.round(w.uplinkSaved * 100)}% saved), p95 ${w.off.p95Ms} → ${w.on.p95Ms} ms`);
  console.log(`wrote ${written.all.map((f) => path.relative(process.cwd(), f)).join(', ')}`);
  return 0;
});
