/**
 * `npm run fuzz`: every fuzz property (properties.ts) for many cases with a
 * fresh seed; prints and writes test/bench/results/fuzz.json and fuzz.md
 * (cases run, time, and each finding with its seed, path and counterexample,
 * so it can be replayed with fc.assert(…, { seed, path })).
 *
 *   npm run fuzz -- [--runs 100000] [--seed N] [--only TEXT]
 */
import path from 'node:path';
import { parseArgs } from 'node:util';
import fc from 'fast-check';
import { packageRoot } from '../../shared/paths.js';
import { writeBenchFiles } from '../bench/write-results.js';
import { properties } from './properties.js';

const { values } = parseArgs({ args: process.argv.slice(2), options: { runs: { type: 'string', default: '100000' }, seed: { type: 'string' }, only: { type: 'string' } } });
const numRuns = Number(values.runs);
const seed = values.seed === undefined ? Date.now() % 2 ** 31 : Number(values.seed);

interface FuzzResult {
  property: string;
  cases: number;
  seconds: number;
  finding?: { seed: number; path?: string; counterexample: string; error: string };
}

const results: FuzzResult[] = [];
for (const { name, property } of properties.filter((p) => !values.only || p.name.includes(values.only))) {
  const started = performance.now();
  const details = fc.check(property as fc.IRawProperty<unknown>, { numRuns, seed }) as fc.RunDetails<unknown>;
  const result: FuzzResult = { property: name, cases: details.numRuns, seconds: Math.round((performance.now() - started) / 100) / 10 };
  if (details.failed) {
    result.finding = {
      seed: details.seed,
      path: details.counterexamplePath ?? undefined,
      counterexample: fc.stringify(details.counterexample).slice(0, 2000),
      error: String((details.errorInstance as Error | undefined)?.message ?? details.errorInstance).slice(0, 1000),
    };
  }
  results.push(result);
  console.log(`${result.finding ? 'FINDING' : 'ok     '} ${name}: ${result.cases} cases in ${result.seconds} s${result.finding ? `\n  ${result.finding.error}\n  counterexample: ${result.finding.counterexample.slice(0, 300)}` : ''}`);
}

const findings = results.filter((r) => r.finding);
const markdown = [
  '# Fuzzing (`npm run fuzz`)',
  '',
  `Seed ${seed}, up to ${numRuns} cases per property, ${new Date().toISOString()}. ${findings.length === 0 ? 'No findings.' : `${findings.length} findings.`}`,
  '',
  '| property | cases | seconds | finding |',
  '| --- | --- | --- | --- |',
  ...results.map((r) => `| ${r.property} | ${r.cases} | ${r.seconds} | ${r.finding ? r.finding.error.replaceAll('|', '\\|').slice(0, 120) : '—'} |`),
  '',
].join('\n');
const written = writeBenchFiles(path.join(packageRoot, 'test', 'bench', 'results'), 'fuzz', { seed, numRuns, properties: results }, markdown);
console.log(`wrote ${path.relative(process.cwd(), written.json)} and ${path.relative(process.cwd(), written.markdown)}`);
process.exitCode = findings.length === 0 ? 0 : 1;
