/**
 * Static INT8 quantization (`quantize --mode static`): a conv stack the test
 * builds, calibrated on its own samples, is rewritten to QDQ, runs in
 * onnxruntime-node as QLinearConv, and agrees with FP32 within the stated
 * tolerance; the elementwise glue between Convs (HardSwish, SE gates,
 * residual Adds, Resize, Concat) runs on uint8 the same way, and so does a
 * MobileNetV2 block (padded and depthwise Convs, ReLU6, residual Sum,
 * AveragePool, Gemm); the calibration methods measure what they say; the exact
 * pre-quantization folds keep the FP32 outputs; and every refusal says what
 * was wrong.
 */
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, test } from 'node:test';
import { clone } from '@bufbuild/protobuf';
import ort from 'onnxruntime-node';
import { ModelProtoSchema, type ModelProto } from 'onnx-buf';
import { buildModel, encodeModel, node, tensor, valueInfo } from '../../models/onnx-graph.js';
import { calibrationSampleFiles, collectRanges, writeCalibrationSample } from '../../models/toolchain/calibrate.js';
import { foldAffineOps } from '../../models/toolchain/fold-affine.js';
import { foldStructure } from '../../models/toolchain/fold-structure.js';
import { allNodes, constantsToInitializers, ModelToolError, readModel, tensorValues } from '../../models/toolchain/onnx-model.js';
import { quantizeStatic } from '../../models/toolchain/quantize-static.js';
import { float32 } from '../../shared/tensor.js';
import { seededRandom } from '../../shared/seeded-random.js';

const tmp = (label: string) => mkdtempSync(path.join(os.tmpdir(), `splitinfer-qstatic-${label}-`));
const shape = [1, 3, 24, 24];

function values(random: () => number, count: number, spread: number): Float32Array {
  return Float32Array.from({ length: count }, () => (random() * 2 - 1) * spread);
}

/**
 * x → Conv 3×3 (bias) → Mul(c) → Add(c) → Relu → Conv 1×1 → HardSwish (as
 * Paddle exports it: Add, Clip, Mul, Div) → Mul(c) → Conv 1×1 → Conv 3×3
 * depthwise → y. Weights are Constant nodes, as in PP-OCR.
 */
function convStack(opset: number): ModelProto {
  const random = seededRandom(42);
  const constant = (name: string, dims: number[], data: Float32Array) => node('Constant', [], [name], { value: { tensor: tensor(name, dims, data) } });
  const scalar = (name: string, v: number) => constant(name, [1], Float32Array.of(v));
  const clip = opset >= 11 ? node('Clip', ['h2', 'zero', 'six'], ['h3']) : node('Clip', ['h2'], ['h3'], { min: { float: 0 }, max: { float: 6 } });
  return buildModel({
    name: 'conv-stack',
    opset,
    nodes: [
      constant('w1', [8, 3, 3, 3], values(random, 216, 0.4)),
      constant('b1', [8], values(random, 8, 0.2)),
      constant('w2', [12, 8, 1, 1], values(random, 96, 0.5)),
      constant('w3', [8, 12, 1, 1], values(random, 96, 0.5)),
      constant('w4', [8, 1, 3, 3], values(random, 72, 0.5)),
      scalar('scale', 1.3),
      scalar('shift', -0.1),
      scalar('three', 3),
      scalar('zero', 0),
      scalar('six', 6),
      scalar('gain', 0.8),
      node('Conv', ['x', 'w1', 'b1'], ['c1'], { pads: { ints: [1, 1, 1, 1] }, kernel_shape: { ints: [3, 3] } }),
      node('Mul', ['scale', 'c1'], ['a1']),
      node('Add', ['a1', 'shift'], ['a2']),
      node('Relu', ['a2'], ['r1']),
      node('Conv', ['r1', 'w2'], ['c2']),
      node('Add', ['c2', 'three'], ['h2']),
      clip,
      node('Mul', ['c2', 'h3'], ['h4']),
      node('Div', ['h4', 'six'], ['h5']),
      node('Mul', ['gain', 'h5'], ['h6']),
      node('Conv', ['h6', 'w3'], ['c3']),
      node('Conv', ['c3', 'w4'], ['y'], { pads: { ints: [1, 1, 1, 1] }, group: { int: 8 } }),
    ],
    initializers: [],
    inputs: [valueInfo('x', 'float32', shape)],
    outputs: [valueInfo('y', 'float32', [1, 8, 24, 24])],
  });
}

/** A calibration folder of `count` random inputs shaped like an image batch. */
function calibrationDir(count: number, seed = 7): string {
  const dir = tmp('calibration');
  const random = seededRandom(seed);
  for (let i = 0; i < count; i++) writeCalibrationSample(dir, `sample-${i}`, { x: float32(shape, values(random, 3 * 24 * 24, 1.5)) });
  return dir;
}

async function runModel(model: ModelProto | Uint8Array, input: Float32Array, options: ort.InferenceSession.SessionOptions = {}): Promise<Float32Array> {
  const session = await ort.InferenceSession.create(model instanceof Uint8Array ? model : encodeModel(model), { logSeverityLevel: 3, ...options });
  const { y } = await session.run({ x: new ort.Tensor('float32', input, shape) });
  await session.release();
  return y!.data as Float32Array;
}

/** Largest |a − b| relative to the range of a (the FP32 output). */
function relativeMaxError(a: Float32Array, b: Float32Array): number {
  let range = 0;
  let worst = 0;
  for (let i = 0; i < a.length; i++) {
    range = Math.max(range, Math.abs(a[i]!));
    worst = Math.max(worst, Math.abs(a[i]! - b[i]!));
  }
  return worst / range;
}

const heldOut = values(seededRandom(99), 3 * 24 * 24, 1.5);

describe('static quantization of a conv stack', () => {
  for (const method of ['minmax', 'percentile'] as const) {
    test(`${method}: all four Convs run as QLinearConv and outputs stay within 6% of the FP32 output range`, async () => {
      const fp32 = convStack(13);
      const model = clone(ModelProtoSchema, fp32);
      const report = await quantizeStatic(model, { calibrationDir: calibrationDir(48), method, modelFile: 'conv-stack.onnx' });
      // The Relu after Conv_c1 is absorbed into its uint8 output; the HardSwish after Conv_c2 is quantized.
      assert.deepEqual(report.quantized, ['Conv_c1', 'Relu_r1', 'Conv_c2', 'HardSigmoid_h5_gate', 'Mul_h5', 'Conv_c3', 'Conv_y']);
      assert.deepEqual(report.keptFloat, []);

      const int8Weights = model.graph!.initializer.filter((t) => t.name.endsWith('_quantized') && t.dataType === 3);
      assert.equal(int8Weights.length, 4, 'each Conv weight is stored as int8');
      for (const w of int8Weights) assert.ok([...tensorValues(w)].every((v) => v >= -127 && v <= 127), `${w.name} stays in [-127, 127]`);

      // Tolerance: uint8 activations at five points and int8 weights, calibrated on 48 random inputs (fewer
      // leave held-out values outside the measured ranges, and clipping them costs far more than rounding).
      const error = relativeMaxError(await runModel(fp32, heldOut), await runModel(model, heldOut));
      assert.ok(error < 0.06, `max error ${(error * 100).toFixed(2)}% of the output range`);

      const optimized = path.join(tmp('optimized'), 'model.onnx');
      await runModel(model, heldOut, { optimizedModelFilePath: optimized });
      const ops = allNodes(readModel(optimized).graph!).map((n) => n.opType);
      assert.equal(ops.filter((op) => op === 'QLinearConv').length, 4, `onnxruntime fused every DQ → Conv → Q (ops: ${[...new Set(ops)].join(', ')})`);
    });
  }

  test('before opset 13 the per-channel Q/DQ come from the com.microsoft domain and the model still runs', async () => {
    const fp32 = convStack(11);
    const model = clone(ModelProtoSchema, fp32);
    await quantizeStatic(model, { calibrationDir: calibrationDir(48), method: 'minmax', modelFile: 'conv-stack-11.onnx' });
    const qdq = model.graph!.node.filter((n) => n.opType === 'DequantizeLinear');
    assert.ok(qdq.length > 0 && qdq.every((n) => n.domain === 'com.microsoft'));
    assert.ok(model.opsetImport.some((o) => o.domain === 'com.microsoft'));
    const error = relativeMaxError(await runModel(fp32, heldOut), await runModel(model, heldOut));
    assert.ok(error < 0.06, `max error ${(error * 100).toFixed(2)}%`);
  });

  test('an opset 9 model is raised to opset 10 (Slice attributes become inputs) so that QLinearConv exists', async () => {
    const random = seededRandom(3);
    const fp32 = buildModel({
      name: 'opset9',
      opset: 9,
      nodes: [node('Conv', ['x', 'w'], ['c'], { pads: { ints: [1, 1, 1, 1] } }), node('Slice', ['c'], ['y'], { starts: { ints: [2] }, ends: { ints: [22] }, axes: { ints: [3] } })],
      initializers: [tensor('w', [4, 3, 3, 3], values(random, 108, 0.4))],
      inputs: [valueInfo('x', 'float32', shape)],
      outputs: [valueInfo('y', 'float32', [1, 4, 24, 20])],
    });
    const model = clone(ModelProtoSchema, fp32);
    await quantizeStatic(model, { calibrationDir: calibrationDir(16), method: 'minmax', modelFile: 'opset9.onnx' });
    assert.equal(model.opsetImport.find((o) => o.domain === '')!.version, 10n);
    const error = relativeMaxError(await runModel(fp32, heldOut), await runModel(model, heldOut));
    assert.ok(error < 0.03, `max error ${(error * 100).toFixed(2)}%`);
  });

  test('excluded Convs stay FP32 and are reported with the reason', async () => {
    const model = convStack(13);
    const report = await quantizeStatic(model, { calibrationDir: calibrationDir(2), method: 'minmax', exclude: ['Conv_c1'], modelFile: 'm.onnx' });
    assert.deepEqual(report.keptFloat, [{ node: 'Conv_c1', reason: 'excluded' }]);
  });

  test('a range cache is filled by the first run and read by the next, which calibrates nothing it holds', async () => {
    const rangeCache = new Map<string, { min: number; max: number }>();
    const samples = calibrationDir(2);
    const first = convStack(13);
    await quantizeStatic(first, { calibrationDir: samples, method: 'minmax', modelFile: 'm.onnx', rangeCache });
    assert.ok(rangeCache.size >= 5, `${rangeCache.size} ranges cached`);
    const again = convStack(13);
    await quantizeStatic(again, { calibrationDir: samples, method: 'minmax', modelFile: 'm.onnx', rangeCache });
    assert.deepEqual(encodeModel(again), encodeModel(first));
    // A cached range, changed, changes the model: it was read, not measured again.
    const [name, range] = [...rangeCache][0]!;
    rangeCache.set(name, { min: range.min * 2, max: range.max * 2 });
    const widened = convStack(13);
    await quantizeStatic(widened, { calibrationDir: samples, method: 'minmax', modelFile: 'm.onnx', rangeCache });
    assert.notDeepEqual(encodeModel(widened), encodeModel(first));
  });

  test('an excluded Conv that reads a quantized value is reported as one onnxruntime will quantize per tensor itself', async () => {
    const model = convStack(13);
    const report = await quantizeStatic(model, { calibrationDir: calibrationDir(2), method: 'minmax', exclude: ['Conv_c3'], modelFile: 'm.onnx' });
    assert.deepEqual(report.quantized, ['Conv_c1', 'Relu_r1', 'Conv_c2', 'HardSigmoid_h5_gate', 'Mul_h5', 'Conv_y']);
    assert.equal(report.keptFloat.length, 1);
    assert.equal(report.keptFloat[0]!.node, 'Conv_c3');
    assert.match(report.keptFloat[0]!.reason, /reads a quantized value, so onnxruntime quantizes its weights per tensor .* leave the node that feeds it in FP32 too/);
  });
});

/**
 * The glue PP-OCRv4 puts between its Convs: x → Conv → HardSwish → Mul(c) →
 * Add(c) → depthwise Conv (padded) → SE gate (GlobalAveragePool → Conv →
 * Relu → Conv → HardSigmoid, times the features) → residual Add → Resize ×2
 * (nearest) → Concat with a Conv of itself → Conv → y, all float.
 */
function glueStack(): ModelProto {
  const random = seededRandom(11);
  const weight = (name: string, dims: number[], spread: number) => tensor(name, dims, values(random, dims.reduce((a, b) => a * b, 1), spread));
  const scalar = (name: string, v: number) => tensor(name, [], Float32Array.of(v));
  return buildModel({
    name: 'glue-stack',
    opset: 13,
    nodes: [
      node('Conv', ['x', 'w1', 'b1'], ['c1'], { pads: { ints: [1, 1, 1, 1] } }),
      node('HardSigmoid', ['c1'], ['g1'], { alpha: { float: 1 / 6 }, beta: { float: 0.5 } }),
      node('Mul', ['c1', 'g1'], ['hs1']),
      node('Mul', ['hs1', 'gain'], ['a1']),
      node('Add', ['a1', 'shift'], ['a2']),
      node('Conv', ['a2', 'w2'], ['c2'], { pads: { ints: [1, 1, 1, 1] }, group: { int: 8 } }),
      node('GlobalAveragePool', ['c2'], ['pool']),
      node('Conv', ['pool', 'w3', 'b3'], ['squeeze']),
      node('Relu', ['squeeze'], ['squeeze_relu']),
      node('Conv', ['squeeze_relu', 'w4', 'b4'], ['excite']),
      node('HardSigmoid', ['excite'], ['gate'], { alpha: { float: 0.2 }, beta: { float: 0.5 } }),
      node('Mul', ['c2', 'gate'], ['scaled']),
      node('Add', ['c2', 'scaled'], ['residual']),
      node('Resize', ['residual', '', 'scales'], ['up'], { mode: { string: 'nearest' } }),
      node('Conv', ['up', 'w5'], ['side']),
      node('Concat', ['up', 'side'], ['joined'], { axis: { int: 1 } }),
      node('Conv', ['joined', 'w6'], ['y']),
    ],
    initializers: [
      weight('w1', [8, 3, 3, 3], 0.4),
      weight('b1', [8], 0.2),
      weight('w2', [8, 1, 3, 3], 0.5),
      weight('w3', [4, 8, 1, 1], 0.5),
      weight('b3', [4], 0.2),
      weight('w4', [8, 4, 1, 1], 0.5),
      weight('b4', [8], 0.2),
      weight('w5', [8, 8, 1, 1], 0.4),
      weight('w6', [4, 16, 1, 1], 0.4),
      scalar('gain', 1.2),
      scalar('shift', -0.3),
      tensor('scales', [4], Float32Array.of(1, 1, 2, 2)),
    ],
    inputs: [valueInfo('x', 'float32', shape)],
    outputs: [valueInfo('y', 'float32', [1, 4, 48, 48])],
  });
}

describe('static quantization of the elementwise glue between Convs', () => {
  test('HardSwish, SE gate, scalar affine, residual Add, Resize and Concat run on uint8 and stay within 6% of FP32', async () => {
    const fp32 = glueStack();
    const model = clone(ModelProtoSchema, fp32);
    const report = await quantizeStatic(model, { calibrationDir: calibrationDir(48), method: 'minmax', modelFile: 'glue-stack.onnx' });
    const quantizedOps = report.quantized.map((label) => label.split('_')[0]);
    assert.deepEqual(
      [...new Set(quantizedOps)].sort(),
      ['Add', 'Concat', 'Conv', 'GlobalAveragePool', 'HardSigmoid', 'Mul', 'Relu', 'Resize'],
      `every node is quantized (${report.quantized.join(', ')})`,
    );

    // Tolerance as for the conv stack: uint8 at every value between the Convs adds rounding, not clipping.
    const error = relativeMaxError(await runModel(fp32, heldOut), await runModel(model, heldOut));
    assert.ok(error < 0.06, `max error ${(error * 100).toFixed(2)}% of the output range`);

    const optimized = path.join(tmp('optimized-glue'), 'model.onnx');
    await runModel(model, heldOut, { optimizedModelFilePath: optimized });
    const ops = allNodes(readModel(optimized).graph!).map((n) => n.opType);
    const count = (op: string) => ops.filter((o) => o === op).length;
    const seen = `ops: ${ops.join(', ')}`;
    assert.equal(count('QLinearConv'), 6, seen);
    // Two HardSigmoids (as QLinearAdd), the shift and the residual; the HardSwish and SE products (the gain is a rescaling DQ).
    assert.equal(count('QLinearAdd'), 4, seen);
    assert.equal(count('QLinearMul'), 2, seen);
    assert.equal(count('QLinearGlobalAveragePool'), 1, seen);
    assert.equal(count('QLinearConcat'), 1, seen);
    for (const op of ['HardSigmoid', 'Add', 'Mul', 'Concat', 'Relu']) assert.equal(count(op), 0, `no float ${op} is left (${seen})`);
    // uint8 from the input's Q to the output's DQ: nothing between (Resize included) runs on float.
    assert.ok(count('DequantizeLinear') === 1 && count('QuantizeLinear') === 1, seen);
  });
});

/**
 * A MobileNetV2 block as Keras exports it: x → Pad (bottom/right) → Conv 3×3
 * stride 2 → BatchNorm → ReLU6 (Clip) → depthwise Conv 3×3 → BatchNorm →
 * ReLU6 → Conv 1×1 → BatchNorm → Sum with the first ReLU6 (residual) →
 * AveragePool over the map → Flatten → Gemm → Relu → Gemm → y.
 */
function mobileNetBlock(): ModelProto {
  const random = seededRandom(17);
  const weight = (name: string, dims: number[], spread: number) => tensor(name, dims, values(random, dims.reduce((a, b) => a * b, 1), spread));
  const bn = (prefix: string, channels: number) => [
    tensor(`${prefix}_gamma`, [channels], Float32Array.from({ length: channels }, () => 0.8 + random() * 0.4)),
    tensor(`${prefix}_beta`, [channels], values(random, channels, 0.2)),
    tensor(`${prefix}_mean`, [channels], values(random, channels, 0.2)),
    tensor(`${prefix}_variance`, [channels], Float32Array.from({ length: channels }, () => 0.5 + random())),
  ];
  const batchNorm = (input: string, prefix: string, output: string) => node('BatchNormalization', [input, `${prefix}_gamma`, `${prefix}_beta`, `${prefix}_mean`, `${prefix}_variance`], [output]);
  return buildModel({
    name: 'mobilenet-block',
    opset: 13,
    nodes: [
      node('Pad', ['x', 'pads'], ['padded']),
      node('Conv', ['padded', 'w1'], ['c1'], { kernel_shape: { ints: [3, 3] }, strides: { ints: [2, 2] } }),
      batchNorm('c1', 'bn1', 'n1'),
      node('Clip', ['n1', 'zero', 'six'], ['r1']),
      node('Conv', ['r1', 'w2'], ['c2'], { kernel_shape: { ints: [3, 3] }, pads: { ints: [1, 1, 1, 1] }, group: { int: 8 } }),
      batchNorm('c2', 'bn2', 'n2'),
      node('Clip', ['n2', 'zero', 'six'], ['r2']),
      node('Conv', ['r2', 'w3'], ['c3']),
      batchNorm('c3', 'bn3', 'n3'),
      node('Sum', ['r1', 'n3'], ['residual']),
      node('AveragePool', ['residual'], ['pool'], { kernel_shape: { ints: [12, 12] }, strides: { ints: [12, 12] }, count_include_pad: { int: 0 } }),
      node('Flatten', ['pool'], ['flat']),
      node('Gemm', ['flat', 'w4', 'b4'], ['dense']),
      node('Relu', ['dense'], ['dense_relu']),
      node('Gemm', ['dense_relu', 'w5', 'b5'], ['y']),
    ],
    initializers: [
      tensor('pads', [8], BigInt64Array.of(0n, 0n, 0n, 0n, 0n, 0n, 1n, 1n)),
      tensor('zero', [], Float32Array.of(0)),
      tensor('six', [], Float32Array.of(6)),
      weight('w1', [8, 3, 3, 3], 0.4),
      weight('w2', [8, 1, 3, 3], 0.5),
      weight('w3', [8, 8, 1, 1], 0.4),
      ...bn('bn1', 8),
      ...bn('bn2', 8),
      ...bn('bn3', 8),
      weight('w4', [8, 6], 0.5),
      weight('b4', [6], 0.2),
      weight('w5', [6, 3], 0.5),
      weight('b5', [3], 0.2),
    ],
    inputs: [valueInfo('x', 'float32', shape)],
    outputs: [valueInfo('y', 'float32', [1, 3])],
  });
}

describe('static quantization of a MobileNetV2 block', () => {
  test('padded stride-2, depthwise and pointwise Convs, ReLU6, the residual Sum, AveragePool and Gemms run on INT8 within 6% of FP32', async () => {
    const fp32 = mobileNetBlock();
    const model = clone(ModelProtoSchema, fp32);
    const report = await quantizeStatic(model, { calibrationDir: calibrationDir(48), method: 'minmax', modelFile: 'mobilenet-block.onnx' });
    // The ReLU6 Clips and the Relu are absorbed into the uint8 outputs of the Conv and Gemm before them; the Sum keeps its name as an Add.
    assert.deepEqual(report.quantized, ['Conv_c1', 'Clip_r1', 'Conv_c2', 'Clip_r2', 'Conv_c3', 'Sum_residual', 'AveragePool_pool', 'Gemm_dense', 'Relu_dense_relu', 'Gemm_y']);
    assert.deepEqual(report.keptFloat, []);
    const ops = model.graph!.node.map((n) => n.opType);
    for (const op of ['Pad', 'Sum', 'BatchNormalization', 'Clip', 'Relu']) assert.ok(!ops.includes(op), `no ${op} is left (ops: ${ops.join(', ')})`);

    const error = relativeMaxError(await runModel(fp32, heldOut), await runModel(model, heldOut));
    assert.ok(error < 0.06, `max error ${(error * 100).toFixed(2)}% of the output range`);

    const optimized = path.join(tmp('optimized-mobilenet'), 'model.onnx');
    await runModel(model, heldOut, { optimizedModelFilePath: optimized });
    const fused = allNodes(readModel(optimized).graph!).map((n) => n.opType);
    const count = (op: string) => fused.filter((o) => o === op).length;
    const seen = `ops: ${fused.join(', ')}`;
    assert.equal(count('QLinearConv'), 3, seen);
    assert.equal(count('QLinearAdd'), 1, seen);
    assert.equal(count('QLinearAveragePool'), 1, seen);
    assert.equal(count('QGemm'), 2, seen);
    for (const op of ['Conv', 'Add', 'AveragePool', 'Gemm']) assert.equal(count(op), 0, `no float ${op} is left (${seen})`);
  });

  test('a Clip whose range does not hold 0 is not absorbed (a uint8 range always holds 0), and stays FP32', async () => {
    const fp32 = mobileNetBlock();
    const initializers = fp32.graph!.initializer;
    initializers[initializers.findIndex((t) => t.name === 'zero')] = tensor('zero', [], Float32Array.of(0.5));
    const model = clone(ModelProtoSchema, fp32);
    const report = await quantizeStatic(model, { calibrationDir: calibrationDir(16), method: 'minmax', modelFile: 'clip.onnx' });
    assert.ok(!report.quantized.includes('Clip_r1') && !report.quantized.includes('Clip_r2'), report.quantized.join(', '));
    assert.equal(model.graph!.node.filter((n) => n.opType === 'Clip').length, 2);
    const error = relativeMaxError(await runModel(fp32, heldOut), await runModel(model, heldOut));
    assert.ok(error < 0.06, `max error ${(error * 100).toFixed(2)}%`);
  });
});

describe('pre-quantization folds', () => {
  test('BatchNorm/Mul/Add around Convs and HardSwish are rewritten without changing the FP32 output', async () => {
    const original = convStack(13);
    const folded = clone(ModelProtoSchema, original);
    constantsToInitializers(folded);
    assert.ok(foldAffineOps(folded) >= 4);
    const ops = folded.graph!.node.map((n) => n.opType);
    assert.deepEqual(ops, ['Conv', 'Relu', 'Conv', 'HardSigmoid', 'Mul', 'Conv', 'Conv'], 'Mul/Add folded into Convs, HardSwish as HardSigmoid × x');
    const error = relativeMaxError(await runModel(original, heldOut), await runModel(folded, heldOut));
    assert.ok(error < 1e-5, `folds are exact up to float rounding (${error})`);
  });

  test('a zero Pad becomes the next Conv\'s pads and a Sum of two an Add, without changing the FP32 output', async () => {
    const original = mobileNetBlock();
    const folded = clone(ModelProtoSchema, original);
    assert.equal(foldStructure(folded), 2);
    const ops = folded.graph!.node.map((n) => n.opType);
    assert.ok(!ops.includes('Pad') && !ops.includes('Sum') && ops.includes('Add'), ops.join(', '));
    const conv = folded.graph!.node.find((n) => n.name === 'Conv_c1')!;
    assert.deepEqual(conv.attribute.find((a) => a.name === 'pads')!.ints.map(Number), [0, 0, 1, 1]);
    const error = relativeMaxError(await runModel(original, heldOut), await runModel(folded, heldOut));
    assert.ok(error < 1e-6, `folds are exact (${error})`);
  });

  test('a ConvTranspose takes the bias Add and BatchNormalization after it, as in the PP-OCRv4 detection head', async () => {
    const random = seededRandom(21);
    const channels = 4;
    const perChannel = (spread: number, offset = 0) => Float32Array.from({ length: channels }, () => offset + (random() * 2 - 1) * spread);
    const original = buildModel({
      name: 'head',
      opset: 13,
      nodes: [
        node('ConvTranspose', ['x', 'w'], ['up'], { kernel_shape: { ints: [2, 2] }, strides: { ints: [2, 2] } }),
        node('Add', ['up', 'bias'], ['biased']),
        node('BatchNormalization', ['biased', 'gamma', 'beta', 'mean', 'variance'], ['y']),
      ],
      initializers: [
        tensor('w', [3, channels, 2, 2], values(random, 3 * channels * 4, 0.5)),
        tensor('bias', [1, channels, 1, 1], perChannel(0.3)),
        tensor('gamma', [channels], perChannel(0.3, 1)),
        tensor('beta', [channels], perChannel(0.2)),
        tensor('mean', [channels], perChannel(0.2)),
        tensor('variance', [channels], perChannel(0.2, 1)),
      ],
      inputs: [valueInfo('x', 'float32', shape)],
      outputs: [valueInfo('y', 'float32', [1, channels, 48, 48])],
    });
    const folded = clone(ModelProtoSchema, original);
    assert.equal(foldAffineOps(folded), 2);
    assert.deepEqual(folded.graph!.node.map((n) => n.opType), ['ConvTranspose']);
    const error = relativeMaxError(await runModel(original, heldOut), await runModel(folded, heldOut));
    assert.ok(error < 1e-5, `folds are exact up to float rounding (${error})`);
  });
});

describe('calibration', () => {
  /** x → Relu → y, so the range of y is the range of the positive inputs. */
  const relu = () =>
    buildModel({ name: 'relu', opset: 13, nodes: [node('Relu', ['x'], ['y'])], initializers: [], inputs: [valueInfo('x', 'float32', shape)], outputs: [valueInfo('y', 'float32', shape)] });

  test('minmax spans every value; percentile drops a lone outlier', async () => {
    const dir = tmp('outlier');
    const random = seededRandom(5);
    // 80 × 1728 values: the kept 99.999% leaves 1.4 values per tail, so one outlier falls outside.
    for (let i = 0; i < 80; i++) {
      const data = Float32Array.from({ length: 3 * 24 * 24 }, () => random());
      if (i === 3) data[100] = 50;
      writeCalibrationSample(dir, `s${i}`, { x: float32(shape, data) });
    }
    const files = calibrationSampleFiles(dir);
    const minmax = (await collectRanges(relu(), ['y'], files, 'minmax')).get('y')!;
    const percentile = (await collectRanges(relu(), ['y'], files, 'percentile')).get('y')!;
    assert.equal(minmax.max, 50);
    assert.ok(minmax.min >= 0 && minmax.min < 0.001);
    assert.ok(percentile.max < 1.1 && percentile.max > 0.9, `percentile max ${percentile.max} ignores the outlier`);
  });
});

describe('static quantization refuses what it cannot do, saying what to do', () => {
  const rejects = (promise: Promise<unknown>, pattern: RegExp) =>
    assert.rejects(promise, (err: unknown) => err instanceof ModelToolError && pattern.test(err.message));

  test('a model without Conv', async () => {
    const model = buildModel({ name: 'mlp', opset: 13, nodes: [node('Relu', ['x'], ['y'])], initializers: [], inputs: [valueInfo('x', 'float32', shape)], outputs: [valueInfo('y', 'float32', shape)] });
    await rejects(quantizeStatic(model, { calibrationDir: calibrationDir(1), method: 'minmax', modelFile: 'mlp.onnx' }), /mlp\.onnx: no Conv node to quantize statically .*--mode dynamic/);
  });

  test('a model that is already quantized', async () => {
    const model = convStack(13);
    await quantizeStatic(model, { calibrationDir: calibrationDir(1), method: 'minmax', modelFile: 'm.onnx' });
    await rejects(quantizeStatic(model, { calibrationDir: calibrationDir(1), method: 'minmax', modelFile: 'm.int8.onnx' }), /already quantized .*quantize the FP32 model/);
  });

  test('an empty or missing calibration folder', async () => {
    await rejects(quantizeStatic(convStack(13), { calibrationDir: tmp('empty'), method: 'minmax', modelFile: 'm.onnx' }), /holds no \.pb samples/);
    await rejects(quantizeStatic(convStack(13), { calibrationDir: '/nonexistent/calibration', method: 'minmax', modelFile: 'm.onnx' }), /cannot read it \(ENOENT\)/);
  });

  test('samples made for another model', async () => {
    const dir = tmp('wrong');
    writeCalibrationSample(dir, 'other', { input_ids: float32([1, 4], new Float32Array(4)) });
    await rejects(quantizeStatic(convStack(13), { calibrationDir: dir, method: 'minmax', modelFile: 'm.onnx' }), /has inputs \[input_ids\], the model needs \[x\]/);
  });

  test('an --exclude name that is no node', async () => {
    await rejects(quantizeStatic(convStack(13), { calibrationDir: calibrationDir(1), method: 'minmax', exclude: ['conv9'], modelFile: 'm.onnx' }), /--exclude names no node called 'conv9'/);
  });
});
