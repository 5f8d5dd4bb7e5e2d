/**
 * `splitinfer model prune`: structured pruning of MatMul → [Add] → Relu →
 * MatMul chains removes the least salient hidden units outright (smaller
 * dense weights), leaves graphs it cannot prune safely alone, and the CLI's
 * errors.
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
import { buildModel, encodeModel, node, tensor, valueInfo } from '../../models/onnx-graph.js';
import { ModelToolError, parseModel, tensorValues } from '../../models/toolchain/onnx-model.js';
import { hiddenUnitSaliency, pruneHiddenUnits, unitsToKeep } from '../../models/toolchain/prune.js';
import { packageRoot } from '../../shared/paths.js';
import { seededRandom } from '../../shared/seeded-random.js';

const run = promisify(execFile);
const cli = path.join(packageRoot, 'dist', 'shared', 'cli.js');
const dir = mkdtempSync(path.join(os.tmpdir(), 'splitinfer-prune-'));
const [K, H, N] = [12, 8, 5];

/**
 * x[batch, 12] · W1[12, 8] + b1 → Relu → · W2[8, 5] + b2. Hidden units
 * 1, 4 and 6 have zero outgoing weights: they cannot change the output, so
 * they are the least salient and pruning them must not change it either.
 */
function chainWithDeadUnits(): ModelProto {
  const random = seededRandom(3);
  const dead = new Set([1, 4, 6]);
  const w2 = Float32Array.from({ length: H * N }, (_, i) => (dead.has(Math.floor(i / N)) ? 0 : random() * 2 - 1));
  return buildModel({
    name: 'mlp',
    nodes: [
      node('MatMul', ['x', 'W1'], ['fc1.matmul']),
      node('Add', ['fc1.matmul', 'b1'], ['fc1.out']),
      node('Relu', ['fc1.out'], ['hidden']),
      node('MatMul', ['hidden', 'W2'], ['fc2.matmul']),
      node('Add', ['fc2.matmul', 'b2'], ['y']),
    ],
    initializers: [
      tensor('W1', [K, H], Float32Array.from({ length: K * H }, () => random() * 2 - 1)),
      tensor('b1', [H], Float32Array.from({ length: H }, () => random() * 0.2)),
      tensor('W2', [H, N], w2),
      tensor('b2', [N], Float32Array.from({ length: N }, () => random())),
    ],
    inputs: [valueInfo('x', 'float32', ['batch', K])],
    outputs: [valueInfo('y', 'float32', ['batch', N])],
  });
}

async function runModel(model: ModelProto, x: Float32Array, batch: number): Promise<Float32Array> {
  const session = await ort.InferenceSession.create(encodeModel(model));
  try {
    return (await session.run({ x: new ort.Tensor('float32', x, [batch, K]) })).y!.data as Float32Array;
  } finally {
    await session.release();
  }
}

const dimsOf = (model: ModelProto, name: string) => model.graph!.initializer.find((t) => t.name === name)!.dims.map(Number);

describe('structured pruning', () => {
  test('saliency is incoming norm (weights and bias) times outgoing norm, and the most salient units stay in order', () => {
    // Unit 0: in (3, 4) → 5, out 1; unit 1: in (0, 0) bias 2 → 2, out 3; unit 2: in (1, 0) → 1, out 0.
    const w1 = Float32Array.from([3, 0, 1, 4, 0, 0]);
    const b1 = Float32Array.from([0, 2, 0]);
    const w2 = Float32Array.from([1, 3, 0]);
    assert.deepEqual([...hiddenUnitSaliency(w1, b1, w2, 3)], [5, 6, 0]);
    assert.deepEqual(unitsToKeep(Float32Array.from([5, 6, 0]), 1 / 3), [0, 1]);
    assert.deepEqual(unitsToKeep(Float32Array.from([5, 6, 0]), 0.9), [1], 'at least one unit stays');
    assert.deepEqual(unitsToKeep(Float32Array.from([1, 1, 1, 1]), 0.5), [0, 1], 'ties keep the lower index');
    for (const ratio of [0, 1, -0.5, Number.NaN]) assert.throws(() => unitsToKeep(Float32Array.from([1, 2]), ratio), ModelToolError);
  });

  test('pruning units that cannot change the output shrinks the weights and leaves the output as it was', async () => {
    const fp32 = chainWithDeadUnits();
    const pruned = chainWithDeadUnits();
    const report = pruneHiddenUnits(pruned, 3 / 8);
    assert.deepEqual(report, { pruned: [{ node: 'MatMul_fc1.matmul', hiddenBefore: 8, hiddenAfter: 5 }], skipped: [] });
    assert.deepEqual(dimsOf(pruned, 'W1'), [K, 5]);
    assert.deepEqual(dimsOf(pruned, 'b1'), [5]);
    assert.deepEqual(dimsOf(pruned, 'W2'), [5, N]);
    const original = tensorValues(fp32.graph!.initializer.find((t) => t.name === 'W1')!) as Float32Array;
    const kept = tensorValues(pruned.graph!.initializer.find((t) => t.name === 'W1')!) as Float32Array;
    assert.deepEqual([...kept.subarray(0, 5)], [0, 2, 3, 5, 7].map((j) => original[j]), 'columns 1, 4 and 6 are gone, the rest in order');

    const random = seededRandom(11);
    const batch = 16;
    const x = Float32Array.from({ length: batch * K }, () => random() * 2 - 1);
    const [before, after] = [await runModel(fp32, x, batch), await runModel(pruned, x, batch)];
    after.forEach((v, i) => assert.ok(Math.abs(v - before[i]!) <= 1e-5, `output ${i}: ${v} vs ${before[i]}`));
  });

  test('a chain whose hidden values have other readers is skipped with the reason, and the model is unchanged', () => {
    const model = chainWithDeadUnits();
    model.graph!.node.push(node('ReduceSum', ['hidden'], ['hidden.sum']));
    model.graph!.output.push(valueInfo('hidden.sum', 'float32', ['batch', 1]));
    const before = encodeModel(model);
    const report = pruneHiddenUnits(model, 0.5);
    assert.deepEqual(report.pruned, []);
    assert.match(report.skipped[0]!.reason, /Relu output is not read by exactly one MatMul/);
    assert.deepEqual(encodeModel(model), before);
  });
});

describe('splitinfer model prune', () => {
  const input = path.join(dir, 'mlp.onnx');
  writeFileSync(input, encodeModel(chainWithDeadUnits()));
  const failsWith = async (args: string[], message: RegExp) =>
    assert.rejects(run(process.execPath, [cli, 'model', 'prune', ...args]), (err: { code: number; stderr: string }) => {
      assert.equal(err.code, 1);
      assert.match(err.stderr, message);
      return true;
    });

  test('--ratio writes the smaller model and says what it pruned', async () => {
    const out = path.join(dir, 'mlp.pruned.onnx');
    const { stdout } = await run(process.execPath, [cli, 'model', 'prune', input, out, '--ratio', '0.5']);
    assert.match(stdout, /pruned MatMul_fc1\.matmul: 8 → 4 hidden units/);
    assert.match(stdout, /accuracy drops until the pruned model is fine-tuned/);
    assert.deepEqual(dimsOf(parseModel(readFileSync(out), out), 'W2'), [4, N]);
  });

  test('a missing or bad --ratio, a non-ONNX file and a model without a prunable chain write nothing', async () => {
    const out = path.join(dir, 'never.onnx');
    await failsWith([input, out], /--ratio R is required/);
    await failsWith([input, out, '--ratio', '1.5'], /--ratio must be a fraction of hidden units to remove, above 0 and below 1 \(e\.g\. 0\.5\), got '1\.5'/);
    await failsWith([input, out, '--ratio', 'half'], /got 'half'/);
    const text = path.join(dir, 'notes.txt');
    writeFileSync(text, 'hello');
    await failsWith([text, out, '--ratio', '0.5'], /notes\.txt: not an ONNX model/);
    const noChain = path.join(dir, 'linear.onnx');
    writeFileSync(
      noChain,
      encodeModel(
        buildModel({
          name: 'linear',
          nodes: [node('MatMul', ['x', 'W'], ['y'])],
          initializers: [tensor('W', [K, N], new Float32Array(K * N))],
          inputs: [valueInfo('x', 'float32', ['batch', K])],
          outputs: [valueInfo('y', 'float32', ['batch', N])],
        }),
      ),
    );
    await failsWith([noChain, out, '--ratio', '0.5'], /no MatMul → \[Add\] → Relu → MatMul chain with constant weights to prune \(the graph has MatMul\) — nothing was written/);
    assert.equal(existsSync(out), false);
  });
});
