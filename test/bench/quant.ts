/**
 * `npm run bench:quant`: every quantized variant against FP32 on this CPU
 * (see quant-run.ts); writes test/bench/results/quant.json and quant.md.
 *
 *   npm run bench:quant -- [--models text-intent,audio-vad] [--quick] [--note TEXT]...
 */
import path from 'node:path';
import { parseArgs } from 'node:util';
import { packageRoot } from '../../shared/paths.js';
import { runQuantBenchmark } from './quant-run.js';
import { writeQuantReport } from './quant-report.js';

const { values } = parseArgs({
  args: process.argv.slice(2),
  options: { models: { type: 'string' }, quick: { type: 'boolean' }, note: { type: 'string', multiple: true }, out: { type: 'string' } },
});
const report = await runQuantBenchmark({ models: values.models?.split(',').map((id) => id.trim()), quick: values.quick, notes: values.note });
const written = writeQuantReport(report, values.out ?? path.join(packageRoot, 'test', 'bench', 'results'));
for (const v of report.targets) console.log(`${v.met === null ? 'n/a' : v.met ? 'met' : 'NOT MET'}: ${v.target} — ${v.measured}`);
console.log(`wrote ${path.relative(process.cwd(), written.json)} and ${path.relative(process.cwd(), written.markdown)}`);
