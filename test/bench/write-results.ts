/**
 * What a benchmark run writes: `<name>.json` (the numbers), `<name>.md` (the
 * same as tables, with how the run was set up) and, for the policy
 * benchmark, policy.svg (p95 per strategy per group).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { markdownReport } from './report-markdown.js';
import { p95Svg } from './report-svg.js';
import { plottedSeries, type BenchResults } from './results.js';

/** Writes `<name>.json` and `<name>.md` (plus any `extra` files) into `dir`; returns their paths. */
export function writeBenchFiles(dir: string, name: string, results: unknown, markdown: string, extra: Record<string, string> = {}): { json: string; markdown: string; all: string[] } {
  mkdirSync(dir, { recursive: true });
  const files: Record<string, string> = { [`${name}.json`]: JSON.stringify(results, null, 2) + '\n', [`${name}.md`]: markdown, ...extra };
  const all = Object.entries(files).map(([file, text]) => {
    const at = path.join(dir, file);
    writeFileSync(at, text);
    return at;
  });
  return { json: all[0]!, markdown: all[1]!, all };
}

export function writeResults(dir: string, results: BenchResults): string[] {
  const svg: Record<string, string> = results.groups.length > 0 ? { 'policy.svg': p95Svg(results.groups, plottedSeries, `p95 latency per strategy per group (${results.setup.mode} run)`) } : {};
  return writeBenchFiles(dir, 'policy', results, markdownReport(results), svg).all;
}
