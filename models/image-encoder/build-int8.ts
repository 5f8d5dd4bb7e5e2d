/**
 * Builds the image-encoder `mobilenet-v2-int8` variant, the edge's default
 * encoder (models/image-encoder/mobilenet-v2.int8.onnx), from the FP32
 * MobileNetV2 the catalog lists: records the handler's feeds for each
 * calibration image, quantizes the graph statically (see quantize-static.ts:
 * the Keras ZeroPadding2D Pads fold into the Convs, BatchNormalization into
 * the Convs, ReLU6 Clips into the Convs' uint8 outputs, Sum into QLinearAdd;
 * the depthwise and pointwise Convs, the residual Adds, the average pool and
 * the dense head's Gemms run on INT8, all but the nodes in `exclude`),
 * checks top-1 agreement and embedding cosine with FP32 on the held-out
 * images, the real photos on their own and all together, and prints what
 * to put in the catalog.
 *
 * Calibration data (calibrationImages() in photo-like-images.ts): the
 * calibration part of the real photos (models/samples/photos), the
 * project's samples (models/samples/ocr) and 64 photo-like scenes rendered
 * with sharp; the held-out check uses the other real photos and scenes
 * from another seed, nothing it calibrated on. MinMax: percentile
 * calibration (99.999) left a smaller mean embedding error on the
 * calibration images with the FP32 nodes below (0.0035 against 0.0038) but
 * more top-1 flips (3 of 87 against 2).
 *
 * Run: npm run build:image-encoder-int8 [-- --method minmax|percentile] [--exclude node,node]
 */
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { findModel, loadCatalog, verifiedPath } from '../../shared/catalog.js';
import { loadModel } from '../../shared/loaded-model.js';
import { createLogger } from '../../shared/log.js';
import { packageRoot } from '../../shared/paths.js';
import { encodeModel } from '../onnx-graph.js';
import { writeCalibrationSample, type CalibrationMethod } from '../toolchain/calibrate.js';
import { readModel } from '../toolchain/onnx-model.js';
import { quantizeStatic } from '../toolchain/quantize-static.js';
import { recordFeeds } from '../toolchain/recorded-feeds.js';
import { encoderAgreement } from './agreement.js';
import { calibrationImages, heldOutImages, isRealPhoto, type NamedImage } from './photo-like-images.js';

const fp32Variant = 'mobilenet-v2';
const int8Variant = 'mobilenet-v2-int8';
const output = 'models/image-encoder/mobilenet-v2.int8.onnx';

/**
 * Left in FP32: the stem Conv and the first depthwise Conv, found by
 * int8-sensitivity.ts. Keeping the depthwise Conv alone in FP32 removes 75%
 * of the INT8 embedding error on the calibration images (the next node, the
 * first project Conv, 19%; every other Conv and the head's Gemms 0–2%). The
 * stem goes with it because onnxruntime would quantize a float Conv that
 * reads a quantized value itself, per tensor (see quantize-static.ts).
 */
const exclude = ['Conv_Conv1/conv', 'Conv_expanded_conv_depthwise/conv'];

async function main(args: string[]): Promise<void> {
  const methodAt = args.indexOf('--method');
  const method = (methodAt >= 0 ? args[methodAt + 1] : 'minmax') as CalibrationMethod;
  if (method !== 'minmax' && method !== 'percentile') throw new Error(`--method must be minmax or percentile, got '${method}'`);
  const excludeAt = args.indexOf('--exclude');
  const keptFloat = excludeAt >= 0 ? (args[excludeAt + 1] ?? '').split(',').filter(Boolean) : exclude;
  const catalogModel = findModel(loadCatalog(), 'image-encoder');
  const log = createLogger('build-image-encoder-int8', 'warn');
  const fp32 = await loadModel(catalogModel, fp32Variant, { providers: ['cpu'], intraOpThreads: 2 }, log);
  const work = mkdtempSync(path.join(tmpdir(), 'encoder-calibration-'));
  try {
    const images = await calibrationImages();
    for (const [i, image] of images.entries()) {
      const [feeds] = (await recordFeeds(fp32, image.bytes))[fp32Variant]!;
      writeCalibrationSample(work, `sample-${String(i).padStart(4, '0')}`, feeds!);
    }
    console.log(`calibration: ${images.length} images (${images.filter(isRealPhoto).length} real photos, the rest project samples and photo-like scenes), ${method}`);
    const modelFile = await verifiedPath(catalogModel.variants[fp32Variant]!.graphs[fp32Variant]!);
    const model = readModel(modelFile);
    const report = await quantizeStatic(model, { calibrationDir: work, method, exclude: keptFloat, modelFile });
    const bytes = encodeModel(model);
    writeFileSync(path.join(packageRoot, output), bytes);
    const sha256 = createHash('sha256').update(bytes).digest('hex');
    console.log(`${report.quantized.length} nodes quantized, ${report.keptFloat.length} kept FP32; ${(bytes.length / 1e6).toFixed(2)} MB`);
    for (const kept of report.keptFloat) console.log(`  FP32 ${kept.node}: ${kept.reason}`);

    // The new file, loaded as the catalog entry printed below will load it.
    const built = { ...catalogModel, variants: { ...catalogModel.variants, [int8Variant]: { graphs: { [int8Variant]: { source: output, sha256 } } } } };
    const int8 = await loadModel(built, int8Variant, { providers: ['cpu'], intraOpThreads: 2 }, log);
    const held = await heldOutImages();
    const check = async (label: string, set: NamedImage[]) => {
      const agreement = await encoderAgreement(fp32, int8, set);
      console.log(
        `held-out, ${label} (${agreement.images} images): top-1 agreement ${(agreement.top1 * 100).toFixed(2)}% (${Math.round(agreement.top1 * agreement.images)}/${agreement.images}), ` +
          `embedding cosine mean ${agreement.meanCosine.toFixed(4)}, min ${agreement.minCosine.toFixed(4)}`,
      );
      for (const d of agreement.disagreements) console.log(`  ${d.name}: fp32 ${d.reference}, int8 ${d.candidate}`);
    };
    try {
      await check('real photos', held.filter(isRealPhoto));
      await check('all: held-out real photos, photo-like scenes of another seed', held);
    } finally {
      await int8.close();
    }
    console.log(`catalog, image-encoder variants:\n  mobilenet-v2-int8:\n    graphs:\n      mobilenet-v2-int8:\n        source: ${output}\n        sha256: ${sha256}`);
  } finally {
    rmSync(work, { recursive: true, force: true });
    await fp32.close();
  }
}

await main(process.argv.slice(2));
