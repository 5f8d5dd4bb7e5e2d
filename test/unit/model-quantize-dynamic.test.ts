/**
 * `splitinfer model quantize --mode dynamic`: per-channel symmetric int8
 * weights, MatMul/Gemm rewritten into the pattern onnxruntime fuses into
 * DynamicQuantizeMatMul, LSTMs inside If branches into DynamicQuantizeLSTM,
 * small weights left FP32, and the CLI's errors.
 *
 * Tolerance: with per-channel int8 weights and a per-tensor uint8 activation,
 * each product carries a relative error of about 1/127 per operand; the
 * outputs checked here stay within 3% of the largest FP32 output value.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, test } from 'node:test';
import { promisify } from 'node:util';
import ort from 'onnxruntime-node';
import type { ModelProto } from 'onnx-buf';
import { buildModel, encodeModel, node, subgraph, tensor, valueInfo } from '../../models/onnx-graph.js';
import { summarizeModel } from '../../models/toolchain/inspect.js';
import { ModelToolError, parseModel } from '../../models/toolchain/onnx-model.js';
import { quantizeDynamic } from '../../models/toolchain/quantize-dynamic.js';
import { INT8_WEIGHT_MAX, quantizeWeightsPerChannel } from '../../models/toolchain/quantize-weights.js';
import { packageRoot } from '../../shared/paths.js';
import { seededRandom } from '../../shared/seeded-random.js';

const run = promisify(execFile);
const cli = path.join(packageRoot, 'dist', 'shared', 'cli.js');
const dir = mkdtempSync(path.join(os.tmpdir(), 'splitinfer-quantize-'));
const TOLERANCE = 0.03;

const random = seededRandom(7);
const values = (n: number, scale = 1) => Float32Array.from({ length: n }, () => (random() * 2 - 1) * scale);

/** x[batch, 64] · W1[64, 512] + b1 → Relu → Gemm(W2ᵀ[256, 512], b2, alpha 0.5, transB) → Relu → · W3[256, 8]. */
function buildMatMulChain(): ModelProto {
  return buildModel({
    name: 'chain',
    nodes: [
      node('MatMul', ['x', 'W1'], ['h1.matmul']),
      node('Add', ['h1.matmul', 'b1'], ['h1.pre']),
      node('Relu', ['h1.pre'], ['h1']),
      node('Gemm', ['h1', 'W2t', 'b2'], ['h2.pre'], { transB: { int: 1 }, alpha: { float: 0.5 } }),
      node('Relu', ['h2.pre'], ['h2']),
      node('MatMul', ['h2', 'W3'], ['y']),
    ],
    initializers: [tensor('W1', [64, 512], values(64 * 512, 0.2)), tensor('b1', [512], values(512, 0.1)), tensor('W2t', [256, 512], values(256 * 512, 0.1)), tensor('b2', [256], values(256, 0.1)), tensor('W3', [256, 8], values(256 * 8, 0.2))],
    inputs: [valueInfo('x', 'float32', ['batch', 64])],
    outputs: [valueInfo('y', 'float32', ['batch', 8])],
  });
}

/**
 * An LSTM in each branch of an If, as Silero VAD has them: the weights are
 * outer-scope initializers reshaped inside the branch (Unsqueeze), the same
 * in both branches.
 */
function buildLstmInIf(): ModelProto {
  const hidden = 32;
  const inputSize = 16;
  const branch = (name: string) => {
    const lstm = node('LSTM', ['x', `${name}.W`, `${name}.R`, 'B'], [`${name}.Y`, `${name}.Y_h`], { hidden_size: { int: hidden } });
    lstm.name = `${name}/LSTM`;
    return subgraph({
      name,
      nodes: [node('Unsqueeze', ['W2d', 'axes0'], [`${name}.W`]), node('Unsqueeze', ['R2d', 'axes0'], [`${name}.R`]), lstm],
      initializers: [],
      inputs: [],
      outputs: [valueInfo(`${name}.Y_h`, 'float32', [1, 'batch', hidden])],
    });
  };
  return buildModel({
    name: 'lstm-in-if',
    nodes: [node('If', ['cond'], ['h'], { then_branch: { graph: branch('then') }, else_branch: { graph: branch('else') } })],
    initializers: [
      tensor('W2d', [4 * hidden, inputSize], values(4 * hidden * inputSize, 0.3)),
      tensor('R2d', [4 * hidden, hidden], values(4 * hidden * hidden, 0.3)),
      tensor('B', [1, 8 * hidden], values(8 * hidden, 0.1)),
      tensor('axes0', [1], BigInt64Array.of(0n)),
    ],
    inputs: [valueInfo('x', 'float32', [5, 'batch', inputSize]), valueInfo('cond', 'bool', [])],
    outputs: [valueInfo('h', 'float32', [1, 'batch', hidden])],
  });
}

// Built once: every call below gets a fresh copy of the same weights.
const copy = (model: ModelProto) => () => parseModel(encodeModel(model), model.graph!.name);
const matMulChain = copy(buildMatMulChain());
const lstmInIf = copy(buildLstmInIf());

async function runModel(model: ModelProto, feeds: Record<string, ort.Tensor>, optimizedModelFilePath?: string): Promise<Float32Array> {
  const session = await ort.InferenceSession.create(encodeModel(model), { graphOptimizationLevel: 'all', intraOpNumThreads: 1, ...(optimizedModelFilePath ? { optimizedModelFilePath } : {}) });
  try {
    const result = await session.run(feeds);
    return result[session.outputNames[0]!]!.data as Float32Array;
  } finally {
    await session.release();
  }
}

function assertClose(actual: Float32Array, expected: Float32Array, label: string): void {
  assert.equal(actual.length, expected.length);
  const scale = expected.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
  let worst = 0;
  for (let i = 0; i < expected.length; i++) worst = Math.max(worst, Math.abs(actual[i]! - expected[i]!));
  assert.ok(worst <= TOLERANCE * scale, `${label}: max |INT8 - FP32| = ${worst.toFixed(5)}, allowed ${TOLERANCE} × ${scale.toFixed(4)}`);
  assert.ok(worst > 0, `${label}: INT8 output is bit-identical to FP32, so nothing was quantized`);
}

describe('per-channel symmetric int8 weights', () => {
  test('each column gets scale max|w| / 127, values stay in [-127, 127] and dequantize within half a step', () => {
    const w = Float32Array.from([1, -0.5, 0, 0.254, 2, 0, -1, 1, 0]);
    const { q, scales } = quantizeWeightsPerChannel(w, [3, 3], 1);
    assert.deepEqual([...scales], [1 / 127, 2 / 127, 1].map(Math.fround));
    assert.deepEqual([...q], [127, -32, 0, 32, 127, 0, -127, 64, 0]);
    const big = values(40 * 30, 5);
    const result = quantizeWeightsPerChannel(big, [40, 30], 0);
    assert.equal(result.scales.length, 40);
    big.forEach((v, i) => {
      const scale = result.scales[Math.floor(i / 30)]!;
      assert.ok(Math.abs(result.q[i]!) <= INT8_WEIGHT_MAX);
      assert.ok(Math.abs(result.q[i]! * scale - v) <= scale / 2 + 1e-6, `element ${i}`);
    });
  });

  test('an all-zero channel gets scale 1 and zeros; a bad axis or size is refused', () => {
    const { q, scales } = quantizeWeightsPerChannel(new Float32Array(4), [2, 2], 0);
    assert.deepEqual([...scales], [1, 1]);
    assert.deepEqual([...q], [0, 0, 0, 0]);
    assert.throws(() => quantizeWeightsPerChannel(new Float32Array(4), [2, 2], 2), /axis 2 is outside dims \[2, 2\]/);
    assert.throws(() => quantizeWeightsPerChannel(new Float32Array(5), [2, 2], 0), /hold 4 values, got 5/);
  });
});

describe('dynamic quantization', () => {
  test('a MatMul/Gemm chain runs on int8 weights within tolerance of FP32, fused by onnxruntime into DynamicQuantizeMatMul', async () => {
    const fp32 = matMulChain();
    const int8 = matMulChain();
    const report = quantizeDynamic(int8, { minWeightElements: 1024 });
    assert.deepEqual(report.quantized, ['MatMul_h1.matmul', 'Gemm_h2.pre', 'MatMul_y']);
    assert.deepEqual(report.keptFloat, []);
    const summary = summarizeModel(int8);
    assert.deepEqual(summary.opsets, { 'ai.onnx': 17, 'com.microsoft': 1 });
    assert.equal(summary.weightBytesByType.float, (512 + 256 + (512 + 256 + 8)) * 4, 'only biases and per-column scales stay float');
    assert.equal(summary.weightBytesByType.int8, 64 * 512 + 256 * 512 + 256 * 8);

    for (const batch of [1, 16]) {
      const x = new ort.Tensor('float32', values(batch * 64), [batch, 64]);
      const optimized = path.join(dir, `chain-optimized-${batch}.onnx`);
      assertClose(await runModel(int8, { x }, optimized), await runModel(fp32, { x }), `batch ${batch}`);
      const fused = summarizeModel(parseModel(readFileSync(optimized), optimized)).ops;
      assert.equal(fused['com.microsoft:DynamicQuantizeMatMul'], 3, `onnxruntime fused every MatMul: ${JSON.stringify(fused)}`);
      assert.equal(fused.MatMulInteger, undefined);
    }
  });

  test('MatMuls with small weights stay FP32 by default, and --exclude keeps the nodes it names, each with its reason', () => {
    const model = matMulChain();
    const report = quantizeDynamic(model, { exclude: ['Gemm_h2.pre'] });
    assert.deepEqual(report.quantized, ['MatMul_h1.matmul']);
    assert.deepEqual(report.keptFloat, [
      { node: 'Gemm_h2.pre', reason: 'excluded by --exclude' },
      { node: 'MatMul_y', reason: 'weight [256, 8] has 2048 elements < 32768: quantizing the activation at run time costs more than INT8 saves' },
    ]);
    assert.throws(() => quantizeDynamic(matMulChain(), { exclude: ['fc9'] }), (err: Error) => err instanceof ModelToolError && /--exclude: no node named 'fc9'/.test(err.message));
  });

  test('LSTMs inside If branches become DynamicQuantizeLSTM sharing one set of int8 weights, within tolerance of FP32', async () => {
    const fp32 = lstmInIf();
    const int8 = lstmInIf();
    const report = quantizeDynamic(int8);
    assert.deepEqual(report.quantized, ['then/LSTM', 'else/LSTM']);
    const summary = summarizeModel(int8);
    assert.equal(summary.ops['com.microsoft:DynamicQuantizeLSTM'], 2);
    assert.equal(summary.ops.LSTM, undefined);
    assert.equal(summary.weightBytesByType.int8, 128 * 16 + 128 * 32 + 2 * 128, 'W and R once for both branches, plus zero points');
    assert.ok(!int8.graph!.initializer.some((t) => t.name === 'W2d'), 'the FP32 weights are gone');
    const x = new ort.Tensor('float32', values(5 * 3 * 16), [5, 3, 16]);
    for (const cond of [true, false]) {
      const feeds = { x, cond: new ort.Tensor('bool', [cond], []) };
      assertClose(await runModel(int8, feeds), await runModel(fp32, feeds), `branch ${cond ? 'then' : 'else'}`);
    }
  });

  test('an already quantized model is refused', () => {
    const model = matMulChain();
    quantizeDynamic(model, { minWeightElements: 0 });
    assert.throws(() => quantizeDynamic(model), /already quantized \(it has DynamicQuantizeLinear node .*\) — quantize the FP32 model instead/);
  });
});

describe('splitinfer model quantize', () => {
  const fp32File = path.join(dir, 'chain.onnx');
  writeFileSync(fp32File, encodeModel(matMulChain()));
  const failsWith = async (args: string[], message: RegExp) =>
    assert.rejects(run(process.execPath, [cli, 'model', 'quantize', ...args]), (err: { code: number; stderr: string }) => {
      assert.equal(err.code, 1);
      assert.match(err.stderr, message);
      return true;
    });

  test('--mode dynamic writes a smaller model that loads, and prints what it quantized and what it kept', async () => {
    const out = path.join(dir, 'chain.int8.onnx');
    const { stdout } = await run(process.execPath, [cli, 'model', 'quantize', fp32File, out, '--mode', 'dynamic']);
    assert.match(stdout, /quantized 2 node\(s\): MatMul_h1\.matmul, Gemm_h2\.pre/);
    assert.match(stdout, /kept FP32 \(1\):\n {2}MatMul_y: weight \[256, 8\]/);
    assert.match(stdout, /bytes → .*chain\.int8\.onnx \d+ bytes \(2\d\.\d%\)/);
    const x = new ort.Tensor('float32', values(64), [1, 64]);
    assertClose(await runModel(parseModel(readFileSync(out), out), { x }), await runModel(matMulChain(), { x }), 'CLI output');
  });

  test('wrong or missing options are refused with what was expected', async () => {
    const out = path.join(dir, 'never.onnx');
    await failsWith([fp32File, out], /--mode must be 'dynamic' or 'static', got none/);
    await failsWith([fp32File, out, '--mode', 'fast'], /--mode must be 'dynamic' or 'static', got 'fast'/);
    await failsWith([fp32File, out, '--mode', 'dynamic', '--calibration', dir], /--calibration and --method only apply to --mode static/);
    await failsWith([fp32File, out, '--mode', 'static'], /--mode static needs --calibration DIR/);
    await failsWith([fp32File, out, '--mode', 'static', '--calibration', dir, '--method', 'median'], /--method must be 'minmax' or 'percentile', got 'median'/);
    await failsWith([fp32File, '--mode', 'dynamic'], /expected IN and OUT model files, got 1 argument/);
    await failsWith([fp32File, out, '--mode', 'dynamic', '--min-weight-elements', 'many'], /--min-weight-elements must be a whole number ≥ 0, got 'many'/);
    assert.equal(existsSync(out), false);
  });

  test('a file that is not ONNX, an already quantized model, and a model with nothing to quantize write nothing', async () => {
    const out = path.join(dir, 'never.onnx');
    const text = path.join(dir, 'notes.txt');
    writeFileSync(text, 'hello');
    await failsWith([text, out, '--mode', 'dynamic'], /notes\.txt: not an ONNX model/);
    await failsWith([fp32File, out, '--mode', 'dynamic', '--exclude', 'MatMul_h1.matmul,Gemm_h2.pre'], /nothing to quantize in --mode dynamic .* nothing was written/);
    const int8 = matMulChain();
    quantizeDynamic(int8, { minWeightElements: 0 });
    const int8File = path.join(dir, 'already.onnx');
    writeFileSync(int8File, encodeModel(int8));
    await failsWith([int8File, out, '--mode', 'dynamic'], /already quantized/);
    assert.equal(existsSync(out), false);
  });
});
