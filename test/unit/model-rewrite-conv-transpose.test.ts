/**
 * The ConvTranspose rewrite of static quantization: a ConvTranspose whose
 * kernel equals its stride becomes a 1×1 Conv and a DepthToSpace that give
 * what onnxruntime gives for the original, with random weights; the
 * DepthToSpace sinks past the activations and 1×1 Convs after it, as in
 * PP-OCRv4's detection head; every other shape stays a ConvTranspose with
 * the reason; and quantizing the head then runs every Conv as QLinearConv.
 */
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, test } from 'node:test';
import { clone } from '@bufbuild/protobuf';
import ort from 'onnxruntime-node';
import { ModelProtoSchema, type ModelProto, type NodeProto, type TensorProto } from 'onnx-buf';
import { buildModel, encodeModel, node, tensor, valueInfo, type AttributeValue } from '../../models/onnx-graph.js';
import { writeCalibrationSample } from '../../models/toolchain/calibrate.js';
import { allNodes, readModel } from '../../models/toolchain/onnx-model.js';
import { quantizeStatic } from '../../models/toolchain/quantize-static.js';
import { rewriteConvTransposes } from '../../models/toolchain/rewrite-conv-transpose.js';
import { seededRandom } from '../../shared/seeded-random.js';
import { float32 } from '../../shared/tensor.js';

/** Not square, so that a height/width mix-up shows. */
const shape = [2, 3, 5, 7];
const random = seededRandom(11);
const values = (count: number, spread = 0.5) => Float32Array.from({ length: count }, () => (random() * 2 - 1) * spread);
const input = values(shape.reduce((a, b) => a * b, 1), 1.5);

interface Layer {
  /** [in, out, kH, kW] */
  weight: number[];
  bias?: boolean;
  attributes: Record<string, AttributeValue>;
}

/** x → ConvTranspose → … → y, with random weights; `after` names ops (Relu, Sigmoid, or a 1×1 `Conv:out`) between and after the layers. */
function model(layers: Layer[], after: string[][] = []): ModelProto {
  const nodes: NodeProto[] = [];
  const initializers: TensorProto[] = [];
  let value = 'x';
  let channels = shape[1]!;
  const add = (n: NodeProto) => {
    nodes.push(n);
    value = n.output[0]!;
  };
  layers.forEach((layer, i) => {
    initializers.push(tensor(`w${i}`, layer.weight, values(layer.weight.reduce((a, b) => a * b, 1))));
    if (layer.bias) initializers.push(tensor(`b${i}`, [layer.weight[1]!], values(layer.weight[1]!)));
    add(node('ConvTranspose', [value, `w${i}`, ...(layer.bias ? [`b${i}`] : [])], [`t${nodes.length}`], layer.attributes));
    channels = layer.weight[1]!;
    for (const op of after[i] ?? []) {
      const [type, outputs] = op.split(':') as [string, string | undefined];
      if (type !== 'Conv') {
        add(node(type, [value], [`a${nodes.length}`]));
        continue;
      }
      const name = `c${nodes.length}`;
      initializers.push(tensor(`${name}_w`, [Number(outputs), channels, 1, 1], values(Number(outputs) * channels)), tensor(`${name}_b`, [Number(outputs)], values(Number(outputs))));
      add(node('Conv', [value, `${name}_w`, `${name}_b`], [`a${nodes.length}`]));
      channels = Number(outputs);
    }
  });
  nodes.push(node('Identity', [value], ['y']));
  return buildModel({ name: 'conv-transpose', opset: 13, nodes, initializers, inputs: [valueInfo('x', 'float32', shape)], outputs: [valueInfo('y', 'float32')] });
}

async function run(m: ModelProto, options: ort.InferenceSession.SessionOptions = {}): Promise<Float32Array> {
  const session = await ort.InferenceSession.create(encodeModel(m), { logSeverityLevel: 3, ...options });
  const { y } = await session.run({ x: new ort.Tensor('float32', input, shape) });
  await session.release();
  return y!.data as Float32Array;
}

async function assertSameOutput(original: ModelProto, rewritten: ModelProto): Promise<void> {
  const [a, b] = [await run(original), await run(rewritten)];
  assert.equal(a.length, b.length);
  let worst = 0;
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i]! - b[i]!));
  assert.ok(worst < 1e-5, `outputs differ by up to ${worst}`);
}

const ops = (m: ModelProto) => m.graph!.node.map((n) => n.opType);
const blocks = (k: number): Record<string, AttributeValue> => ({ kernel_shape: { ints: [k, k] }, strides: { ints: [k, k] } });

describe('ConvTranspose with kernel = stride', () => {
  for (const [k, bias] of [[2, true], [3, false]] as const) {
    test(`${k}×${k} stride ${k}${bias ? ' with bias' : ''} becomes a 1×1 Conv and DepthToSpace with the same output`, async () => {
      const original = model([{ weight: [3, 5, k, k], bias, attributes: blocks(k) }]);
      const rewritten = clone(ModelProtoSchema, original);
      const report = rewriteConvTransposes(rewritten);
      assert.deepEqual(report, { rewritten: ['ConvTranspose_t0'], refused: [] });
      assert.deepEqual(ops(rewritten), ['Conv', 'DepthToSpace', 'Identity']);
      await assertSameOutput(original, rewritten);
    });
  }

  test('the DepthToSpace sinks past Relu, 1×1 Convs and Sigmoid, as in the PP-OCRv4 detection head, with the same output', async () => {
    const original = model(
      [
        { weight: [3, 4, 2, 2], bias: true, attributes: blocks(2) },
        { weight: [4, 1, 2, 2], bias: true, attributes: blocks(2) },
      ],
      [['Relu', 'Conv:4'], ['Sigmoid']],
    );
    const rewritten = clone(ModelProtoSchema, original);
    assert.equal(rewriteConvTransposes(rewritten).rewritten.length, 2);
    assert.deepEqual(ops(rewritten), ['Conv', 'Relu', 'Conv', 'Conv', 'Sigmoid', 'DepthToSpace', 'DepthToSpace', 'Identity']);
    const groups = rewritten.graph!.node.filter((n) => n.opType === 'Conv').map((n) => Number(n.attribute.find((a) => a.name === 'group')?.i ?? 1));
    assert.deepEqual(groups, [1, 4, 4], 'each Conv after a sunk DepthToSpace has one group per block position');
    await assertSameOutput(original, rewritten);
  });

  test('a DepthToSpace stops at a Conv that is not 1×1', async () => {
    const original = model([{ weight: [3, 4, 2, 2], attributes: blocks(2) }], [['Relu']]);
    const last = original.graph!.node.find((n) => n.opType === 'Relu')!;
    original.graph!.initializer.push(tensor('w3', [2, 4, 3, 3], values(72)));
    original.graph!.node.splice(original.graph!.node.indexOf(last) + 1, 0, node('Conv', [last.output[0]!, 'w3'], ['c3'], { pads: { ints: [1, 1, 1, 1] } }), node('Add', ['c3', 'c3'], ['sum']));
    original.graph!.node.at(-1)!.input = ['sum'];
    const rewritten = clone(ModelProtoSchema, original);
    rewriteConvTransposes(rewritten);
    assert.deepEqual(ops(rewritten), ['Conv', 'Relu', 'DepthToSpace', 'Conv', 'Add', 'Identity']);
    await assertSameOutput(original, rewritten);
  });
});

describe('ConvTransposes the rewrite leaves as they are', () => {
  const cases: [string, Layer, RegExp][] = [
    ['overlapping blocks', { weight: [3, 4, 3, 3], attributes: { strides: { ints: [2, 2] }, pads: { ints: [1, 1, 1, 1] } } }, /kernel 3×3 with strides 2×2/],
    ['a kernel wider than tall', { weight: [3, 4, 2, 3], attributes: { strides: { ints: [2, 3] } } }, /kernel 2×3 with strides 2×3/],
    ['groups', { weight: [3, 2, 2, 2], attributes: { ...blocks(2), group: { int: 3 } } }, /grouped/],
    ['output padding', { weight: [3, 4, 2, 2], attributes: { ...blocks(2), output_padding: { ints: [1, 1] } } }, /padding, output padding or dilation/],
    ['an output_shape', { weight: [3, 4, 2, 2], attributes: { ...blocks(2), output_shape: { ints: [10, 14] } } }, /output_shape/],
  ];
  for (const [what, layer, reason] of cases) {
    test(`${what}: kept, with the reason`, async () => {
      const original = model([layer]);
      const rewritten = clone(ModelProtoSchema, original);
      const report = rewriteConvTransposes(rewritten);
      assert.deepEqual(report.rewritten, []);
      assert.equal(report.refused.length, 1);
      assert.match(report.refused[0]!.reason, reason);
      assert.deepEqual(rewritten, original, 'the model is not touched');
    });
  }

  test('a weight computed at run time: kept, with the reason', () => {
    const m = model([{ weight: [3, 4, 2, 2], attributes: blocks(2) }]);
    m.graph!.node.unshift(node('Identity', ['w0'], ['w0_copy']));
    m.graph!.node.find((n) => n.opType === 'ConvTranspose')!.input[1] = 'w0_copy';
    assert.deepEqual(rewriteConvTransposes(m).refused, [{ node: 'ConvTranspose_t0', reason: 'its weight is not a float constant' }]);
  });
});

describe('static quantization of a detection head', () => {
  function calibrationDir(): string {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'splitinfer-conv-transpose-'));
    for (let i = 0; i < 32; i++) writeCalibrationSample(dir, `sample-${i}`, { x: float32(shape, values(input.length, 1.5)) });
    return dir;
  }

  /** x → Conv 3×3 → Relu → ConvTranspose → Relu → ConvTranspose → Sigmoid → y, the DB head's shape. */
  function head(second: Layer): ModelProto {
    const m = model([{ weight: [6, 4, 2, 2], bias: true, attributes: blocks(2) }, second], [['Relu'], ['Sigmoid']]);
    m.graph!.initializer.push(tensor('stem', [6, 3, 3, 3], values(162)), tensor('stem_bias', [6], values(6)));
    m.graph!.node.unshift(node('Conv', ['x', 'stem', 'stem_bias'], ['s'], { pads: { ints: [1, 1, 1, 1] } }), node('Relu', ['s'], ['sr']));
    m.graph!.node.find((n) => n.opType === 'ConvTranspose')!.input[0] = 'sr';
    return m;
  }

  test('every Conv of the rewritten head runs as QLinearConv and the Sigmoid on uint8, within 3% of FP32', async () => {
    const fp32 = head({ weight: [4, 1, 2, 2], bias: true, attributes: blocks(2) });
    const model = clone(ModelProtoSchema, fp32);
    const report = await quantizeStatic(model, { calibrationDir: calibrationDir(), method: 'minmax', modelFile: 'head.onnx' });
    assert.deepEqual(report.keptFloat, []);
    assert.deepEqual(report.quantized, ['Conv_s', 'Relu_sr', 'ConvTranspose_t0', 'Relu_a1', 'ConvTranspose_t2', 'Sigmoid_a3']);
    const [a, b] = [await run(fp32), await run(model)];
    const worst = a.reduce((w, v, i) => Math.max(w, Math.abs(v - b[i]!)), 0);
    assert.ok(worst < 0.03, `sigmoid outputs differ by up to ${worst}`);

    const optimized = path.join(mkdtempSync(path.join(os.tmpdir(), 'splitinfer-conv-transpose-')), 'model.onnx');
    await run(model, { optimizedModelFilePath: optimized });
    const fused = allNodes(readModel(optimized).graph!).map((n) => n.opType);
    assert.equal(fused.filter((op) => op === 'QLinearConv').length, 3, `ops: ${[...new Set(fused)].join(', ')}`);
    assert.ok(fused.includes('QLinearSigmoid') && !fused.includes('ConvTranspose'), `ops: ${[...new Set(fused)].join(', ')}`);
  });

  test('a ConvTranspose it cannot rewrite stays FP32, and the report says why', async () => {
    const model = head({ weight: [4, 1, 3, 3], attributes: { strides: { ints: [2, 2] }, pads: { ints: [1, 1, 1, 1] }, output_padding: { ints: [1, 1] } } });
    const report = await quantizeStatic(model, { calibrationDir: calibrationDir(), method: 'minmax', modelFile: 'head.onnx' });
    assert.equal(report.keptFloat.length, 1);
    assert.equal(report.keptFloat[0]!.node, 'ConvTranspose_t2');
    assert.match(report.keptFloat[0]!.reason, /no QDQ fusion for ConvTranspose, and it is no 1×1 Conv plus DepthToSpace \(kernel 3×3 with strides 2×2/);
  });
});
