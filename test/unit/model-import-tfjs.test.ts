/**
 * `splitinfer model import-tfjs`: small Keras models built here with
 * TensorFlow.js, saved in the layers format, imported, and run through tfjs
 * and through onnxruntime-node on the same random input; every supported
 * layer and option appears in one of them. Unsupported layers and options
 * are refused by name, and nothing is written.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, test } from 'node:test';
import { promisify } from 'node:util';
import { importVerified } from '../../models/toolchain/import-tfjs-command.js';
import { importTfjs } from '../../models/toolchain/import-tfjs.js';
import { ModelToolError } from '../../models/toolchain/onnx-model.js';
import { readTfjsModel } from '../../models/toolchain/tfjs-model-files.js';
import { packageRoot } from '../../shared/paths.js';
import { loadLayersModel, maxAbsDiff, randomizeWeights, runOnnx, saveLayersModel, tf } from '../helpers/tfjs.js';

const run = promisify(execFile);
const cli = path.join(packageRoot, 'dist', 'shared', 'cli.js');
const root = mkdtempSync(path.join(os.tmpdir(), 'splitinfer-import-tfjs-'));
let saved = 0;

/** Saves `model` (random weights) to a fresh folder; returns the folder. */
async function save(model: tf.LayersModel, options: { quantize?: boolean } = {}): Promise<string> {
  randomizeWeights(model);
  const dir = path.join(root, `model-${++saved}`);
  await saveLayersModel(model, dir, options);
  return dir;
}

/** The same seeded input through tfjs (reloaded from `dir`) and the imported ONNX model; returns both and the ONNX outputs. */
async function compare(dir: string, batch = 2, outputs: string[] = []) {
  const reference = await loadLayersModel(dir);
  const [, height, width, channels] = reference.inputs[0]!.shape as number[];
  const shape = [batch, height!, width!, channels!];
  const input = tf.randomUniform(shape, 0, 1, 'float32', 7);
  const values = input.dataSync() as Float32Array;
  const { bytes, report } = await importVerified(dir, { outputs });
  const onnx = await runOnnx(bytes, values, shape);
  const expected = (reference.predict(input) as tf.Tensor).dataSync() as Float32Array;
  return { reference, input, onnx, expected, report };
}

const TOLERANCE = 1e-4;

describe('model import-tfjs', () => {
  test('a conv stack matches tfjs: same/valid padding, stride 2 on odd and even sizes, dilation, depthwise, BN with and without gamma/beta, ReLU6, pooling, flatten order', async () => {
    const model = tf.sequential({
      layers: [
        tf.layers.conv2d({ inputShape: [15, 16, 3], filters: 8, kernelSize: 3, strides: 2, padding: 'same', useBias: true }),
        tf.layers.batchNormalization({ epsilon: 0.01 }),
        tf.layers.reLU({ maxValue: 6 }),
        tf.layers.zeroPadding2d({ padding: [[1, 2], [0, 1]] }),
        tf.layers.depthwiseConv2d({ kernelSize: 3, depthMultiplier: 2, strides: 2, padding: 'same', useBias: true }),
        tf.layers.batchNormalization({ scale: false, center: false }),
        tf.layers.conv2d({ filters: 6, kernelSize: 3, dilationRate: 2, padding: 'same', activation: 'relu' }),
        tf.layers.conv2d({ filters: 6, kernelSize: [2, 3], padding: 'valid', useBias: false }),
        tf.layers.reLU(),
        tf.layers.maxPooling2d({ poolSize: 3, strides: 2, padding: 'same' }),
        tf.layers.averagePooling2d({ poolSize: 2, strides: 1, padding: 'same' }),
        tf.layers.flatten(),
        tf.layers.dense({ units: 10, activation: 'relu' }),
        tf.layers.dropout({ rate: 0.5 }),
        tf.layers.dense({ units: 4, activation: 'softmax' }),
      ],
    });
    const { onnx, expected, report } = await compare(await save(model));
    assert.deepEqual(report.outputs.map((o) => o.name), ['probabilities', 'features']);
    assert.ok(maxAbsDiff(onnx.probabilities!, expected) <= TOLERANCE, `probabilities differ by ${maxAbsDiff(onnx.probabilities!, expected)}`);
    const features = tf.model({ inputs: model.inputs, outputs: model.layers.at(-3)!.output as tf.SymbolicTensor });
    const expectedFeatures = (features.predict(tf.randomUniform([2, 15, 16, 3], 0, 1, 'float32', 7)) as tf.Tensor).dataSync();
    assert.ok(maxAbsDiff(onnx.features!, expectedFeatures) <= TOLERANCE, `features differ by ${maxAbsDiff(onnx.features!, expectedFeatures)}`);
  });

  test('stride-2 "same" padding pads bottom/right more than top/left, as TF does', async () => {
    // 8 → 4 with a 3×3 window: one padded row/column, which TF puts after the image.
    const model = tf.sequential({ layers: [tf.layers.conv2d({ inputShape: [8, 8, 1], filters: 1, kernelSize: 3, strides: 2, padding: 'same' }), tf.layers.flatten()] });
    const dir = await save(model);
    const conv = importTfjs(readTfjsModel(dir)).model.graph!.node.find((n) => n.opType === 'Conv')!;
    assert.deepEqual(conv.attribute.find((a) => a.name === 'pads')!.ints.map(Number), [0, 0, 1, 1]);
    const { onnx, expected } = await compare(dir);
    assert.ok(maxAbsDiff(onnx.output!, expected) <= TOLERANCE);
  });

  test('a functional model with Concatenate and Add branches, global pooling and a linear head matches tfjs; --output exposes a middle layer pooled', async () => {
    const input = tf.input({ shape: [12, 12, 3] });
    const stem = tf.layers.conv2d({ filters: 4, kernelSize: 3, padding: 'same', activation: 'elu', name: 'stem' }).apply(input) as tf.SymbolicTensor;
    const a = tf.layers.conv2d({ filters: 3, kernelSize: 1, activation: 'sigmoid' }).apply(stem) as tf.SymbolicTensor;
    const b = tf.layers.conv2d({ filters: 5, kernelSize: 3, padding: 'same', activation: 'tanh' }).apply(stem) as tf.SymbolicTensor;
    const joined = tf.layers.concatenate({ axis: -1, name: 'joined' }).apply([a, b]) as tf.SymbolicTensor;
    const shortcut = tf.layers.conv2d({ filters: 8, kernelSize: 1, activation: 'softplus' }).apply(stem) as tf.SymbolicTensor;
    const sum = tf.layers.add().apply([joined, shortcut]) as tf.SymbolicTensor;
    const swish = tf.layers.activation({ activation: 'swish' }).apply(sum) as tf.SymbolicTensor;
    const relu6 = tf.layers.activation({ activation: 'relu6' }).apply(swish) as tf.SymbolicTensor;
    const pooled = tf.layers.globalAveragePooling2d({}).apply(relu6) as tf.SymbolicTensor;
    const bn = tf.layers.batchNormalization().apply(pooled) as tf.SymbolicTensor;
    const head = tf.layers.dense({ units: 3 }).apply(bn) as tf.SymbolicTensor;
    const model = tf.model({ inputs: input, outputs: head });
    const { onnx, expected, report } = await compare(await save(model), 2, ['joined']);
    assert.deepEqual(report.outputs.map((o) => [o.name, o.shape]), [['output', ['batch', 3]], ['features', ['batch', 8]], ['joined', ['batch', 8]]]);
    assert.ok(maxAbsDiff(onnx.output!, expected) <= TOLERANCE, `output differs by ${maxAbsDiff(onnx.output!, expected)}`);
    const middle = tf.model({ inputs: input, outputs: joined });
    const expectedJoined = (middle.predict(tf.randomUniform([2, 12, 12, 3], 0, 1, 'float32', 7)) as tf.Tensor).mean([1, 2]).dataSync();
    assert.ok(maxAbsDiff(onnx.joined!, expectedJoined) <= TOLERANCE, `pooled 'joined' differs by ${maxAbsDiff(onnx.joined!, expectedJoined)}`);
  });

  test('uint8-quantized weights (the manifest quantization field) are read as tfjs reads them', async () => {
    const model = tf.sequential({
      layers: [tf.layers.conv2d({ inputShape: [9, 9, 3], filters: 4, kernelSize: 3, strides: 2, padding: 'valid' }), tf.layers.globalMaxPooling2d({}), tf.layers.dense({ units: 2, activation: 'softmax' })],
    });
    const { onnx, expected } = await compare(await save(model, { quantize: true }));
    assert.ok(maxAbsDiff(onnx.probabilities!, expected) <= TOLERANCE);
  });

  test('an unsupported layer class is refused with its name and class', async () => {
    const model = tf.sequential({ layers: [tf.layers.upSampling2d({ inputShape: [4, 4, 1], size: [2, 2], name: 'grow' }), tf.layers.flatten()] });
    const dir = await save(model);
    assert.throws(() => importTfjs(readTfjsModel(dir)), /layer 'grow' \(UpSampling2D\): layer class UpSampling2D is not supported — the importer translates InputLayer, Conv2D/);
  });

  test('a folder without model.json or model.min.js is refused', () => {
    assert.throws(() => readTfjsModel(root), (err: Error) => err instanceof ModelToolError && /no model.json or model.min.js in it/.test(err.message));
  });

  test('an unsupported option is refused naming layer, class and option, and the command writes nothing', async () => {
    const model = tf.sequential({ layers: [tf.layers.conv2d({ inputShape: [3, 6, 6], filters: 2, kernelSize: 3, dataFormat: 'channelsFirst', name: 'conv_3' }), tf.layers.flatten()] });
    const dir = await save(model);
    const out = path.join(root, 'refused.onnx');
    await assert.rejects(run(process.execPath, [cli, 'model', 'import-tfjs', dir, out]), (err: { code: number; stderr: string }) => {
      assert.equal(err.code, 1);
      assert.match(err.stderr, /layer 'conv_3' \(Conv2D\): data_format "channels_first" is not supported — the importer reads 'channels_last' \(NHWC\) models/);
      return true;
    });
    assert.equal(existsSync(out), false);
  });
});
