/**
 * Compares the OCR `int8` variant with `fp32`: character accuracy of the
 * whole handler (detection, then recognition) over the evaluation set
 * (models/image-ocr/eval/, made by make-eval-set.ts), per language; and
 * session latency of each graph, FP32 and INT8 interleaved in one run
 * (one thread each, median of the rounds), at the shapes the handler feeds:
 * a detection page at the 960 px limit, recognition batches of 1 and 16
 * lines. A third column times the FP32 graph after only the exact
 * pre-quantization folds (fold-affine.ts), to show how much of the gain
 * is the rewrite and how much is INT8.
 *
 * Run after a build: node dist/models/image-ocr/evaluate.js [--rounds N]
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import ort from 'onnxruntime-node';
import { findModel, loadCatalog, resolveSource } from '../../shared/catalog.js';
import type { OcrResult } from '../../shared/handlers/image-ocr.js';
import { loadModel, type LoadedModel } from '../../shared/loaded-model.js';
import { createLogger } from '../../shared/log.js';
import { packageRoot } from '../../shared/paths.js';
import { encodeModel } from '../onnx-graph.js';
import { foldAffineOps } from '../toolchain/fold-affine.js';
import { constantsToInitializers, readModel } from '../toolchain/onnx-model.js';
import { upgradeToOpset10 } from '../toolchain/opset-upgrade.js';
import { characterAccuracy, type Reading } from './char-accuracy.js';

const evalDir = path.join(packageRoot, 'models', 'image-ocr', 'eval');

/** The lines an OCR result holds, as one string (what a single-line image should read as). */
export const readAs = (result: OcrResult) => result.lines.map((l) => l.text).join(' ');

async function accuracy(model: LoadedModel, expected: Record<string, string>): Promise<Record<string, number>> {
  const readings: Record<string, Reading[]> = { zh: [], en: [] };
  for (const [file, reference] of Object.entries(expected)) {
    const result = (await model.run(new Uint8Array(readFileSync(path.join(evalDir, file))))).result as unknown as OcrResult;
    readings[file.slice(0, 2)]!.push({ reference, hypothesis: readAs(result) });
  }
  return { zh: characterAccuracy(readings.zh!), en: characterAccuracy(readings.en!), all: characterAccuracy([...readings.zh!, ...readings.en!]) };
}

function foldedFp32(file: string): Uint8Array {
  const model = readModel(file);
  constantsToInitializers(model);
  upgradeToOpset10(model, file);
  foldAffineOps(model);
  return encodeModel(model);
}

async function latency(graph: string, fp32File: string, int8File: string, dims: number[], rounds: number) {
  const options: ort.InferenceSession.SessionOptions = { intraOpNumThreads: 1, interOpNumThreads: 1, graphOptimizationLevel: 'all', logSeverityLevel: 3 };
  const sessions = [
    await ort.InferenceSession.create(fp32File, options),
    await ort.InferenceSession.create(foldedFp32(fp32File), options),
    await ort.InferenceSession.create(int8File, options),
  ];
  const count = dims.reduce((n, d) => n * d, 1);
  // Normalised-image-like values; the timing of these graphs does not depend on the pixels.
  const feeds = { x: new ort.Tensor('float32', Float32Array.from({ length: count }, (_, i) => Math.sin(i * 0.37) * 1.8), dims) };
  const times = sessions.map(() => [] as number[]);
  for (let round = -1; round < rounds; round++) {
    for (const [i, session] of sessions.entries()) {
      const started = performance.now();
      await session.run(feeds);
      if (round >= 0) times[i]!.push(performance.now() - started);
    }
  }
  await Promise.all(sessions.map((s) => s.release()));
  const [fp32, folded, int8] = times.map((t) => t.sort((a, b) => a - b)[t.length >> 1]!) as [number, number, number];
  console.log(
    `${graph} [${dims.join('×')}]: fp32 ${fp32.toFixed(1)} ms, fp32 folded ${folded.toFixed(1)} ms, int8 ${int8.toFixed(1)} ms — ` +
      `int8 ${(fp32 / int8).toFixed(2)}× faster than fp32 (${(folded / int8).toFixed(2)}× than folded fp32)`,
  );
}

async function main(args: string[]): Promise<void> {
  const roundsAt = args.indexOf('--rounds');
  const rounds = roundsAt >= 0 ? Number(args[roundsAt + 1]) : 9;
  const catalogModel = findModel(loadCatalog(), 'image-ocr');
  const expected = JSON.parse(readFileSync(path.join(evalDir, 'expected.json'), 'utf8')) as Record<string, string>;
  const log = createLogger('evaluate', 'silent');
  for (const variant of ['fp32', 'int8']) {
    const model = await loadModel(catalogModel, variant, { providers: ['cpu'], intraOpThreads: 1 }, log);
    try {
      const acc = await accuracy(model, expected);
      console.log(`${variant}: character accuracy zh ${(acc.zh! * 100).toFixed(2)}%, en ${(acc.en! * 100).toFixed(2)}%, all ${(acc.all! * 100).toFixed(2)}% (${Object.keys(expected).length} images)`);
    } finally {
      await model.close();
    }
  }
  const file = (variant: string, graph: string) => resolveSource(catalogModel.variants[variant]!.graphs[graph]!.source);
  await latency('ocr-det', file('fp32', 'ocr-det'), file('int8', 'ocr-det'), [1, 3, 704, 960], rounds);
  await latency('ocr-rec', file('fp32', 'ocr-rec'), file('int8', 'ocr-rec'), [1, 3, 48, 320], rounds * 3);
  await latency('ocr-rec', file('fp32', 'ocr-rec'), file('int8', 'ocr-rec'), [16, 3, 48, 320], rounds);
}

await main(process.argv.slice(2));
