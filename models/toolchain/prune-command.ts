/** `splitinfer model prune IN OUT --ratio R`. */
import { statSync, writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { encodeModel } from '../onnx-graph.js';
import { ModelToolError, readModel } from './onnx-model.js';
import { checkRatio, pruneHiddenUnits } from './prune.js';
import { assertLoadsInOnnxRuntime } from './verify-model.js';

const help = `usage: splitinfer model prune IN OUT --ratio R

Structured pruning: in every MatMul → [Add] → Relu → MatMul chain of IN,
removes the fraction R (0 < R < 1) of hidden units with the lowest saliency
(L2 norm of incoming weights and bias × L2 norm of outgoing weights) —
columns of the first weight, entries of its bias, rows of the second — and
writes the smaller model to OUT. The result must load in onnxruntime-node,
or nothing is written.

Pruning costs accuracy until the model is fine-tuned; for the text model,
models/text-intent/train.ts --prune R prunes, fine-tunes and quantizes.`;

export async function main(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({ args, allowPositionals: true, options: { ratio: { type: 'string' }, help: { type: 'boolean', short: 'h' } } });
  if (values.help) {
    console.log(help);
    return 0;
  }
  if (positionals.length !== 2) throw new ModelToolError(`prune: expected IN and OUT model files, got ${positionals.length} argument(s)\n\n${help}`);
  if (values.ratio === undefined) throw new ModelToolError(`prune: --ratio R is required: the fraction of hidden units to remove, e.g. --ratio 0.5\n\n${help}`);
  const [input, output] = positionals as [string, string];
  const ratio = Number(values.ratio);
  checkRatio(ratio, `'${values.ratio}'`);
  const model = readModel(input);
  const report = pruneHiddenUnits(model, ratio);
  for (const p of report.pruned) console.log(`pruned ${p.node}: ${p.hiddenBefore} → ${p.hiddenAfter} hidden units`);
  for (const s of report.skipped) console.log(`skipped ${s.node}: ${s.reason}`);
  if (report.pruned.length === 0) {
    const ops = [...new Set(model.graph!.node.map((n) => n.opType))].join(', ');
    throw new ModelToolError(`${input}: no MatMul → [Add] → Relu → MatMul chain with constant weights to prune (the graph has ${ops}) — nothing was written`);
  }
  const bytes = encodeModel(model);
  await assertLoadsInOnnxRuntime(bytes, 'pruned', 'report the model: the pruner changed shapes the graph still relies on');
  writeFileSync(output, bytes);
  const before = statSync(input).size;
  console.log(`${input} ${before} bytes → ${output} ${bytes.length} bytes (${((bytes.length / before) * 100).toFixed(1)}%)`);
  console.log('accuracy drops until the pruned model is fine-tuned');
  return 0;
}
