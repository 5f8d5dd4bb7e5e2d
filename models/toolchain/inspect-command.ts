/** `splitinfer model inspect FILE... [--json]`. */
import { statSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { formatSummary, summarizeModel } from './inspect.js';
import { readModel } from './onnx-model.js';

const help = `usage: splitinfer model inspect FILE... [--json]

Prints each model's IR version and opsets, inputs and outputs with shapes,
operator counts (subgraphs included), parameter count and weight bytes by
element type. --json prints one JSON object per file instead.`;

export async function main(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({ args, allowPositionals: true, options: { json: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } } });
  if (values.help) {
    console.log(help);
    return 0;
  }
  if (positionals.length === 0) {
    console.error(help);
    return 2;
  }
  for (const file of positionals) {
    const summary = summarizeModel(readModel(file));
    console.log(values.json ? JSON.stringify({ file, fileBytes: statSync(file).size, ...summary }) : formatSummary(file, statSync(file).size, summary));
  }
  return 0;
}
