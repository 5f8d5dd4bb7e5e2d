/**
 * `npm run bench:edge`: the round trip of requests through the MQTT broker
 * and the agent, beside the floors it could reach, and the gRPC unary
 * overhead to the cloud tier (see edge-run.ts); writes
 * test/bench/results/edge.json and edge.md (--quick: results/quick/).
 *
 *   npm run bench:edge -- [--quick] [--out DIR] [--note TEXT]...
 */
import path from 'node:path';
import { parseArgs } from 'node:util';
import { packageRoot } from '../../shared/paths.js';
import { runEdgeBenchmark } from './edge-run.js';
import { writeEdgeResults } from './edge-report.js';
import { killAllChildren } from './processes.js';

const { values } = parseArgs({
  args: process.argv.slice(2),
  options: { quick: { type: 'boolean' }, out: { type: 'string' }, note: { type: 'string', multiple: true } },
});
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    killAllChildren();
    process.exit(130);
  });
}
try {
  const results = await runEdgeBenchmark({ quick: values.quick, notes: values.note });
  const resultsDir = path.join(packageRoot, 'test', 'bench', 'results');
  const written = writeEdgeResults(values.out ?? (values.quick ? path.join(resultsDir, 'quick') : resultsDir), results);
  for (const t of results.targets) console.log(`${t.met ? 'met' : 'NOT MET'}: ${t.target} — ${t.measured}`);
  console.log(`wrote ${path.relative(process.cwd(), written.json)} and ${path.relative(process.cwd(), written.markdown)}`);
  process.exit(0);
} catch (err) {
  killAllChildren();
  console.error((err as Error).stack ?? String(err));
  process.exit(1);
}
