/**
 * The real nsfwjs models (MobileNetV2 and InceptionV3, uint8-quantized tfjs
 * layers models in .min.js bundles) imported to ONNX give what tfjs gives on
 * the same photo-like image: class probabilities within 1e-4, features (the
 * 128 values the final Dense layer reads) at cosine ≥ 0.9999. tfjs runs on
 * its pure-JS CPU backend: InceptionV3 takes it ~12 s on one core.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import sharp from 'sharp';
import { nsfwjsModelDir, nsfwjsModels, NSFWJS_CLASSES } from '../../models/image-encoder/nsfwjs-models.js';
import { importVerified } from '../../models/toolchain/import-tfjs-command.js';
import { cosine, loadLayersModel, maxAbsDiff, runOnnx, tf } from '../helpers/tfjs.js';

/** A photo-like RGB scene (sky gradient, sun, hills, a textured field) at `size`², as pixels / 255 NHWC, as nsfwjs feeds its models. */
async function scene(size: number): Promise<Float32Array> {
  const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="640" height="480">
    <defs>
      <linearGradient id="sky" x1="0" y1="0" x2="0" y2="1"><stop offset="0" stop-color="#2a5fa8"/><stop offset="1" stop-color="#cfe3f5"/></linearGradient>
      <pattern id="grass" width="12" height="9" patternUnits="userSpaceOnUse"><rect width="12" height="9" fill="#3d7a2b"/><path d="M0 9 L3 0 L6 9 M6 9 L9 2 L12 9" stroke="#5fa040" fill="none"/></pattern>
    </defs>
    <rect width="640" height="480" fill="url(#sky)"/>
    <circle cx="500" cy="90" r="45" fill="#ffd75e"/>
    <path d="M0 300 Q160 200 320 290 T640 260 V480 H0 Z" fill="#6b8f4e"/>
    <rect y="360" width="640" height="120" fill="url(#grass)"/>
    <rect x="120" y="250" width="90" height="120" fill="#a0522d"/><polygon points="110,250 165,200 220,250" fill="#7a2e1e"/>
  </svg>`;
  const { data } = await sharp(Buffer.from(svg)).resize(size, size, { fit: 'fill' }).removeAlpha().raw().toBuffer({ resolveWithObject: true });
  return Float32Array.from(data, (v) => v / 255);
}

describe('nsfwjs models imported to ONNX', () => {
  for (const [id, spec] of Object.entries(nsfwjsModels)) {
    test(`${id}: probabilities within 1e-4 and features at cosine ≥ 0.9999 of tfjs on the same image`, async (t) => {
      const dir = nsfwjsModelDir(spec);
      let started = performance.now();
      const { bytes, report } = await importVerified(dir);
      const importMs = performance.now() - started;
      assert.deepEqual(report.outputs.map((o) => [o.name, o.shape]), [['probabilities', ['batch', NSFWJS_CLASSES.length]], ['features', ['batch', 128]]]);

      const image = await scene(spec.size);
      const shape = [1, spec.size, spec.size, 3];
      started = performance.now();
      const onnx = await runOnnx(bytes, image, shape);
      const onnxMs = performance.now() - started;

      started = performance.now();
      const reference = await loadLayersModel(dir);
      const featuresLayer = reference.getLayer(report.outputs[1]!.layer);
      const probe = tf.model({ inputs: reference.inputs, outputs: [reference.outputs[0]!, featuresLayer.output as tf.SymbolicTensor] });
      const [probabilities, features] = (probe.predict(tf.tensor4d(image, shape as [number, number, number, number])) as tf.Tensor[]).map((x) => x.dataSync());
      const tfjsMs = performance.now() - started;

      const probabilityDiff = maxAbsDiff(onnx.probabilities!, probabilities!);
      const featureCosine = cosine(onnx.features!, features!);
      t.diagnostic(`${report.parameters} parameters; import ${importMs.toFixed(0)} ms, ONNX session + run ${onnxMs.toFixed(0)} ms, tfjs load + run ${tfjsMs.toFixed(0)} ms`);
      t.diagnostic(`probabilities ${[...onnx.probabilities!].map((p) => p.toFixed(4)).join(' ')}; max diff ${probabilityDiff.toExponential(2)}, features 1 − cosine ${(1 - featureCosine).toExponential(1)}`);
      assert.ok(probabilityDiff <= 1e-4, `probabilities differ by ${probabilityDiff}`);
      assert.ok(featureCosine >= 0.9999, `features cosine ${featureCosine}`);
    });
  }
});
