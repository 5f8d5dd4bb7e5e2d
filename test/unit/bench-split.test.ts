/**
 * The layer-split benchmark's parts that decide its verdict: the INT8
 * activation round trip, the end-to-end latency each placement gets under a
 * group's link and edge speed, when a split counts as beating both ends,
 * and the report saying so.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { constantTrace } from '../helpers/bandwidth-trace.js';
import type { GroupPlan } from '../bench/groups.js';
import { splitSweep, splitVerdicts } from '../bench/split-latency.js';
import { dequantizeActivation, quantizeActivation, type ActivationEncoding, type SplitMeasurements } from '../bench/split-measure.js';
import { splitMarkdown } from '../bench/split-report.js';

const encoding = (bytes: number, packMs = 0, unpackMs = 0): ActivationEncoding => ({ bytes, packMs, unpackMs });

/**
 * Edge-only: (10 + 100) ms × factor. Cloud-only: shaping 5 ms × factor,
 * 12 500 bytes, cloud 10 + 100 ms. One split point: head 20 ms + pack 1 ms
 * on the edge, 1 250 bytes compressed, unpack 1 ms + tail 80 ms in the cloud.
 */
const measurements: SplitMeasurements = {
  images: 1,
  wholeMs: 100,
  preprocessMs: 10,
  cloudPreprocessMs: 10,
  points: [
    {
      at: 'mixed0/concat',
      dims: [1, 256, 35, 35],
      maxAbsDiff: 0,
      timedMs: { whole: 100, head: 20, tail: 80 },
      headMs: 20,
      tailMs: 80,
      encodings: { float32: encoding(1_254_400), int8: encoding(313_608), 'int8-deflate': encoding(1_250, 1, 1), 'int8-brotli': encoding(1_400, 1, 1) },
      int8Agreement: { top1: 1, meanCosine: 0.9999, minCosine: 0.999 },
    },
  ],
  jpeg: [{ name: '640px q90', maxSide: 640, jpegQuality: 90, accuracyCost: 0, bytes: 12_500, shapeMs: 5 }],
};

function group(mbps: number, ratio: number, busy = false): GroupPlan {
  const uplink = constantTrace(mbps);
  return { name: `constant/${mbps}/${ratio}x`, traceSet: 'constant', trace: uplink, traceOffsetS: 0, uplink, uplinkMeanMbps: mbps, setMedianMbps: mbps, rttMs: 80, jitterMs: 8, busy, ratio };
}

describe('bench:split', () => {
  test('INT8 activations come back within half a step of the tensor range', () => {
    const values = Float32Array.from({ length: 1000 }, (_, i) => Math.sin(i) * 3 + 1);
    const quantized = quantizeActivation(values);
    const step = quantized.scale;
    assert.ok(Math.abs(step - 6 / 255) < 1e-3);
    const back = dequantizeActivation(quantized);
    for (let i = 0; i < values.length; i++) assert.ok(Math.abs(back[i]! - values[i]!) <= step / 2 + 1e-6);
    assert.deepEqual([...dequantizeActivation(quantizeActivation(new Float32Array([2, 2, 2])))], [2, 2, 2], 'a constant tensor survives');
  });

  test('each placement adds edge work × the edge factor, upload at the link rate, the RTT and cloud work', () => {
    // 1 Mbit/s, ratio 4: edge-only 440; cloud-only 20 + 100 + 80 + 110 = 310; split 124 + 10 + 80 + 81 = 295.
    const [slow] = splitVerdicts(measurements, [group(1, 4)], 10).verdicts;
    assert.equal(slow!.edgeOnly.p95Ms, 440);
    assert.equal(slow!.cloudOnly.p95Ms, 310);
    assert.equal(slow!.bestSplit.placement, 'split mixed0/concat int8-deflate');
    assert.equal(slow!.bestSplit.p95Ms, 295);
    assert.equal(slow!.splitBeatsBothEnds, true);
    assert.equal(slow!.splitVsBestEnd, 0.952);

    // Busy doubles the edge factor: the split's head costs more than the bytes it saves.
    const [busy] = splitVerdicts(measurements, [group(1, 4, true)], 10).verdicts;
    assert.equal(busy!.edgeFactor, 8);
    assert.equal(busy!.splitBeatsBothEnds, false);
    // A fast link: the JPEG's upload costs little, so cloud-only wins.
    assert.equal(splitVerdicts(measurements, [group(20, 4)], 10).verdicts[0]!.splitBeatsBothEnds, false);
  });

  test('the sweep and the report say where a split wins and where none does', () => {
    const sweep = { rttMs: 80, cells: splitSweep(measurements, [4, 8], [1, 20], 80) };
    assert.deepEqual(
      sweep.cells.map((c) => [c.edgeFactor, c.uplinkMbps, c.ratio < 1]),
      [[4, 1, true], [4, 20, false], [8, 1, false], [8, 20, false]],
    );
    const { verdicts, all } = splitVerdicts(measurements, [group(1, 4), group(20, 4)], 10);
    const setup = { mode: 'quick' as const, date: 'today', seconds: 1, cpus: 2, cpuModel: 'cpu', node: 'v20', loadAverage: { before: [1, 1, 1], after: [1, 1, 1] }, tracesDir: 'traces', windowS: 10 };
    const markdown = splitMarkdown({ setup, measurements, verdicts, sweep, placements: all });
    assert.match(markdown, /A split beats both ends in 1 of 2 groups\*\*: constant\/1\/4x \(split mixed0\/concat int8-deflate, 0.952×\)/);
    assert.match(markdown, /\| 4 \| \*\*0.952\*\* \(mixed0\/concat int8-deflate, 295 ms\) \|/);
    const none = splitMarkdown({ setup, measurements, verdicts: verdicts.slice(1), sweep, placements: all });
    assert.match(none, /No split point beats both ends in any of the 1 groups/);
  });
});
