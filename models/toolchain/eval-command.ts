/** `splitinfer model eval --model ID --variant V [--reference fp32] [--data PATH] [--json]`. */
import path from 'node:path';
import { parseArgs } from 'node:util';
import { loadCatalog, type CatalogModel } from '../../shared/catalog.js';
import { loadModel } from '../../shared/loaded-model.js';
import { createLogger } from '../../shared/log.js';
import { getEvaluator, type Evaluation } from './evaluator.js';
import './evaluators.js';
import { ModelToolError } from './onnx-model.js';

const help = `usage: splitinfer model eval --model ID --variant V [--reference fp32] [--data PATH] [--json]

Loads two variants of a catalog model (sha256-checked) and runs both through
the model's own handler on a data set: prints the quality of each and the
difference. Quality is task accuracy where the data has labels, agreement
with the reference's outputs where it has none:
  text-intent  intent accuracy on a JSONL of {"text","lang","intent"}
               (default: models/text-intent/data/test.jsonl, the held-out split)
  audio-vad    share of 32 ms frames whose speech decision matches the reference,
               over a folder of WAVs (default: models/samples/audio/)
  image-ocr    character accuracy on a folder of images with expected.json
               (default: models/image-ocr/eval/, 60 zh + 60 en lines)
  image-encoder share of images whose top label matches the reference's, over
               a folder of images (default: the held-out real photos of
               models/samples/photos and 64 rendered photo-like scenes)
Sessions run on the CPU with one thread each. --json prints one JSON object.`;

function variantOf(model: CatalogModel, variant: string, option: string): string {
  if (model.variants[variant]) return variant;
  throw new ModelToolError(`eval: model ${model.id} has no variant '${variant}' (catalog has: ${Object.keys(model.variants).join(', ')}) — pass one of them with ${option}`);
}

const percent = (x: number) => `${(x * 100).toFixed(2)}%`;
const points = (x: number) => `${x >= 0 ? '+' : ''}${(x * 100).toFixed(2)} points`;

function report(model: string, variant: string, reference: string, data: string, evaluation: Evaluation): string {
  const width = Math.max(reference.length, variant.length, 'difference'.length) + 2;
  const lines = [
    `${model}: ${variant} vs ${reference}, ${evaluation.metric} on ${evaluation.samples} ${evaluation.sampleUnit} (${path.relative(process.cwd(), data) || data})`,
    `  ${reference.padEnd(width)}${percent(evaluation.reference)}`,
    `  ${variant.padEnd(width)}${percent(evaluation.candidate)}`,
    `  ${'difference'.padEnd(width)}${points(evaluation.candidate - evaluation.reference)}`,
  ];
  for (const [name, group] of Object.entries(evaluation.groups)) {
    lines.push(`  ${name}: ${reference} ${percent(group.reference)}, ${variant} ${percent(group.candidate)} (${group.samples} ${evaluation.sampleUnit})`);
  }
  return lines.join('\n');
}

export async function main(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      model: { type: 'string' },
      variant: { type: 'string' },
      reference: { type: 'string', default: 'fp32' },
      data: { type: 'string' },
      json: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    console.log(help);
    return 0;
  }
  const catalog = loadCatalog();
  const ids = catalog.models.map((m) => m.id).join(', ');
  if (!values.model || !values.variant) throw new ModelToolError(`eval: --model ID and --variant V are required (models: ${ids})\n\n${help}`);
  const model = catalog.models.find((m) => m.id === values.model);
  if (!model) throw new ModelToolError(`eval: unknown model '${values.model}' — the catalog has: ${ids}`);
  const variant = variantOf(model, values.variant, '--variant');
  const reference = variantOf(model, values.reference, '--reference');
  if (variant === reference) throw new ModelToolError(`eval: --variant and --reference are both '${variant}' — compare two different variants of ${model.id}`);

  const evaluator = getEvaluator(model.handler);
  const data = path.resolve(values.data ?? evaluator.defaultDataPath);
  const set = evaluator.load(data);
  const log = createLogger('eval', 'warn');
  const options = { providers: ['cpu'], intraOpThreads: 1 };
  const [referenceModel, candidateModel] = await Promise.all([loadModel(model, reference, options, log), loadModel(model, variant, options, log)]);
  try {
    const evaluation = await set.evaluate(referenceModel, candidateModel);
    if (values.json) {
      const { reference: referenceQuality, candidate: variantQuality, ...rest } = evaluation;
      console.log(JSON.stringify({ model: model.id, reference, variant, data, ...rest, referenceQuality, variantQuality, difference: variantQuality - referenceQuality }));
    } else {
      console.log(report(model.id, variant, reference, data, evaluation));
    }
  } finally {
    await Promise.all([referenceModel.close(), candidateModel.close()]);
  }
  return 0;
}
