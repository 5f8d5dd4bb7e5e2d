/**
 * TensorFlow.js (pure-JS CPU backend) as the reference for the tfjs → ONNX
 * importer: save a Keras model the test builds into a folder in the layers
 * format (optionally with uint8-quantized weights, as the tfjs converter
 * writes them), load a folder back into tfjs from the same files the importer
 * reads, and compare outputs.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import ort from 'onnxruntime-node';
import { readTfjsArtifacts } from '../../models/toolchain/tfjs-model-files.js';

// Quiet: tfjs otherwise prints a banner about its native backend on first use.
tf.enableProdMode();
export { tf };

/** Each value of `values` as uint8 over its own [min, max], as the tfjs converter's --quantize_uint8 stores it. */
function quantizeUint8(values: Float32Array): { bytes: Uint8Array; min: number; scale: number } {
  let min = Infinity;
  let max = -Infinity;
  for (const v of values) {
    min = Math.min(min, v);
    max = Math.max(max, v);
  }
  const scale = max > min ? (max - min) / 255 : 1;
  return { bytes: Uint8Array.from(values, (v) => Math.round((v - min) / scale)), min, scale };
}

/** Saves `model` to `dir` as model.json + weights.bin (the layout tfjs's file:// handler writes). */
export async function saveLayersModel(model: tf.LayersModel, dir: string, options: { quantize?: boolean } = {}): Promise<void> {
  mkdirSync(dir, { recursive: true });
  await model.save(
    tf.io.withSaveHandler(async (artifacts) => {
      let weightSpecs = artifacts.weightSpecs!;
      let weightData = new Uint8Array(tf.io.CompositeArrayBuffer.join(artifacts.weightData!));
      if (options.quantize) {
        const floats = new Float32Array(weightData.buffer);
        const parts: Uint8Array[] = [];
        let offset = 0;
        weightSpecs = weightSpecs.map((spec) => {
          const count = spec.shape.reduce((n, d) => n * d, 1);
          const { bytes, min, scale } = quantizeUint8(floats.subarray(offset, offset + count));
          offset += count;
          parts.push(bytes);
          return { ...spec, quantization: { dtype: 'uint8', min, scale } };
        });
        weightData = Buffer.concat(parts);
      }
      writeFileSync(path.join(dir, 'model.json'), JSON.stringify({ modelTopology: artifacts.modelTopology, weightsManifest: [{ paths: ['weights.bin'], weights: weightSpecs }] }));
      writeFileSync(path.join(dir, 'weights.bin'), weightData);
      return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } };
    }),
  );
}

/** The model in `dir` in tfjs, from the bytes the importer reads; tfjs dequantizes them itself. */
export function loadLayersModel(dir: string): Promise<tf.LayersModel> {
  const { modelTopology, weightSpecs, weightData } = readTfjsArtifacts(dir);
  return tf.loadLayersModel(tf.io.fromMemory({ modelTopology, weightSpecs: weightSpecs as tf.io.WeightsManifestEntry[], weightData: weightData.slice().buffer }));
}

/** Random weights in [-1, 1), moving variances in [0.5, 1.5), so that batch normalization does something. */
export function randomizeWeights(model: tf.LayersModel, seed = 1): void {
  model.setWeights(
    model.weights.map((w, i) => {
      const [low, high] = w.name.endsWith('moving_variance') ? [0.5, 1.5] : [-1, 1];
      return tf.randomUniform(w.shape as number[], low, high, 'float32', seed + i);
    }),
  );
}

/** Runs the ONNX model on an NHWC float input; returns every output's values. */
export async function runOnnx(bytes: Uint8Array, input: Float32Array, shape: number[]): Promise<Record<string, Float32Array>> {
  const session = await ort.InferenceSession.create(bytes, { executionProviders: ['cpu'], intraOpNumThreads: 1 });
  try {
    const results = await session.run({ input: new ort.Tensor('float32', input, shape) });
    return Object.fromEntries(Object.entries(results).map(([name, t]) => [name, t.data as Float32Array]));
  } finally {
    await session.release();
  }
}

export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`lengths differ: ${a.length} vs ${b.length}`);
  let max = 0;
  for (let i = 0; i < a.length; i++) max = Math.max(max, Math.abs(a[i]! - b[i]!));
  return max;
}

export function cosine(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let dot = 0;
  let na = 0;
  let nb = 0;
  for (let i = 0; i < a.length; i++) {
    dot += a[i]! * b[i]!;
    na += a[i]! ** 2;
    nb += b[i]! ** 2;
  }
  return dot / Math.sqrt(na * nb);
}
