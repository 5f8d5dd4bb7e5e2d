/**
 * `npm run bench:faults`: delivery under faults (fault-run.ts). 1,000
 * requests at 20/s while the agent is SIGKILLed 3×, SIGTERMed 2×, mosquitto
 * restarted 2× and the cloud tier killed 2×; writes
 * test/bench/results/faults.json and faults.md (--quick: 100 requests, one
 * of each fault, to results/quick/).
 *
 *   npm run bench:faults -- [--quick] [--out DIR]
 */
import { createWriteStream } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { packageRoot } from '../../shared/paths.js';
import { faultMarkdown, runFaults, type FaultKind } from './fault-run.js';
import { writeBenchFiles } from './write-results.js';

const { values } = parseArgs({ args: process.argv.slice(2), options: { quick: { type: 'boolean' }, out: { type: 'string' } } });
const full: FaultKind[] = ['agent-sigkill', 'broker-restart', 'agent-sigterm', 'cloud-kill', 'agent-sigkill', 'broker-restart', 'agent-sigterm', 'cloud-kill', 'agent-sigkill'];
const quick: FaultKind[] = ['agent-sigkill', 'agent-sigterm', 'broker-restart', 'cloud-kill'];
const log = createWriteStream(path.join(os.tmpdir(), 'splitinfer-bench-faults.log'), { flags: 'a' });
const result = await runFaults({
  requests: values.quick ? 100 : 1_000,
  ratePerS: values.quick ? 10 : 20,
  faults: values.quick ? quick : full,
  faultGapMs: 3_000,
  maxConcurrentRequests: 4,
  deadlineMs: 60_000,
  settleMs: 120_000,
  log,
});
const resultsDir = path.join(packageRoot, 'test', 'bench', 'results');
const written = writeBenchFiles(values.out ?? (values.quick ? path.join(resultsDir, 'quick') : resultsDir), 'faults', result, faultMarkdown(result));
console.log(`${result.requests} requests: ${result.answeredOnce} answered once, ${result.lost} lost, ${result.duplicated} answered twice, max latency ${result.maxLatencyMs} ms (agent log: ${log.path})`);
console.log(`wrote ${path.relative(process.cwd(), written.json)} and ${path.relative(process.cwd(), written.markdown)}`);
process.exit(result.lost === 0 && result.duplicated === 0 ? 0 : 1);
