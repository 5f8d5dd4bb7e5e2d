/**
 * What a benchmark run writes: policy.json (the numbers), policy.md (the same
 * as tables, with how the run was set up) and policy.svg (p95 per strategy
 * per group).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { markdownReport } from './report-markdown.js';
import { p95Svg } from './report-svg.js';
import { plottedSeries, type BenchResults } from './results.js';

export function writeResults(dir: string, results: BenchResults): string[] {
  mkdirSync(dir, { recursive: true });
  const files: Record<string, string> = {
    'policy.json': JSON.stringify(results, null, 2) + '\n',
    'policy.md': markdownReport(results),
  };
  if (results.groups.length > 0) files['policy.svg'] = p95Svg(results.groups, plottedSeries, `p95 latency per strategy per group (${results.setup.mode} run)`);
  return Object.entries(files).map(([name, text]) => {
    const file = path.join(dir, name);
    writeFileSync(file, text);
    return file;
  });
}
