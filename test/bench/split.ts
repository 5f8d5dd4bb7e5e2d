/**
 * `npm run bench:split`: is splitting InceptionV3 between the edge and the
 * cloud ever faster than running it at either end? Measures every block
 * boundary on this CPU (split-measure.ts), computes each bench:policy
 * group's end-to-end latency from those numbers (split-latency.ts), and
 * writes test/bench/results/split.json and split.md.
 *
 *   npm run bench:split -- [--quick] [--out DIR]
 */
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { packageRoot } from '../../shared/paths.js';
import { realTracesDir } from '../helpers/bandwidth-trace.js';
import { planGroups } from './groups.js';
import { runBenchmarkMain } from './processes.js';
import { splitSweep, splitVerdicts } from './split-latency.js';
import { measureSplitPoints } from './split-measure.js';
import { splitMarkdown, type SplitResults } from './split-report.js';
import { writeBenchFiles } from './write-results.js';

/** bench:policy's full run: 60 requests, one every 1.2 s on average, over a link replayed for 10 s more. */
const policyWindowS = 72;

async function main(): Promise<number> {
  const { values } = parseArgs({ args: process.argv.slice(2), options: { quick: { type: 'boolean' }, out: { type: 'string' } } });
  const started = performance.now();
  const loadBefore = os.loadavg().map((l) => Math.round(l * 100) / 100);
  const measurements = await measureSplitPoints({ images: values.quick ? 12 : undefined, rounds: values.quick ? 3 : 9, progress: (line) => console.log(line) });
  const groups = planGroups({ tracesDir: realTracesDir, quick: false, ratios: [4, 8], seed: 1, replayS: policyWindowS + 10 });
  const { verdicts, all } = splitVerdicts(measurements, groups, policyWindowS);
  for (const v of verdicts) {
    console.log(
      `${v.group}: edge-only p95 ${v.edgeOnly.p95Ms} ms, ${v.cloudOnlyFastest.placement} ${v.cloudOnlyFastest.p95Ms} ms, ${v.bestSplit.placement} ${v.bestSplit.p95Ms} ms → ${v.splitBeatsBothEnds ? 'SPLIT WINS' : 'an end wins'} (${v.splitVsBestEnd}×)`,
    );
  }
  const sweep = { rttMs: 80, cells: splitSweep(measurements, [1, 2, 4], [0.25, 0.5, 1, 2, 5, 10, 20], 80) };
  const results: SplitResults = {
    setup: {
      mode: values.quick ? 'quick' : 'full',
      date: new Date().toISOString(),
      seconds: Math.round((performance.now() - started) / 1000),
      cpus: os.availableParallelism(),
      cpuModel: os.cpus()[0]?.model ?? 'unknown',
      node: process.version,
      loadAverage: { before: loadBefore, after: os.loadavg().map((l) => Math.round(l * 100) / 100) },
      tracesDir: path.relative(packageRoot, realTracesDir),
      windowS: policyWindowS,
    },
    measurements,
    verdicts,
    sweep,
    placements: all,
  };
  const out = values.out ?? path.join(packageRoot, 'test', 'bench', 'results', ...(values.quick ? ['quick'] : []));
  const written = writeBenchFiles(out, 'split', results, splitMarkdown(results));
  console.log(`wrote ${path.relative(process.cwd(), written.json)} and ${path.relative(process.cwd(), written.markdown)}`);
  return 0;
}

runBenchmarkMain(main);
