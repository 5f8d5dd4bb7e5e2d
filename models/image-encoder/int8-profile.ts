/**
 * Where the time of MobileNetV2 goes, FP32 against INT8: onnxruntime's own
 * profiler (one intra-op thread, optimization level 'all', as the edge's
 * worker loads models) on held-out images through the handler's resize,
 * summed per op type and per kind of node (stem, depthwise and pointwise
 * Convs, the layout and quantization glue between FP32 and INT8 parts, the
 * rest), in ms per run. The profiler's own overhead inflates small nodes:
 * compare speed-ups with `npm run bench:quant`, which times whole runs.
 *
 * What it showed (Intel Xeon with AVX512-VNNI, onnxruntime-node 1.30):
 * the depthwise QLinearConvs run no faster than the FP32 NCHWc depthwise
 * Convs at batch 1 (1.4× at batch 16) while the pointwise ones run 2.4×
 * (3.4×), so the depthwise Convs, a third of the INT8 time, cap the
 * speed-up. The FP32 stem and first depthwise Conv cost their FP32 time
 * plus the glue into INT8 (ReorderOutput, QuantizeLinear, a uint8
 * Transpose: 7% of the INT8 time at batch 1); quantized, the stem (3 input
 * channels) runs twice as slow as in FP32, so an all-INT8 build is no faster.
 *
 * Run: tsc -p . && node dist/models/image-encoder/int8-profile.js [--variant mobilenet-v2-int8] [--batches 1,16] [--runs 20]
 */
import { readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import ort from 'onnxruntime-node';
import { findModel, loadCatalog, verifiedPath } from '../../shared/catalog.js';
import { decodeImage } from '../../shared/handlers/image-decode.js';
import { encoderInput } from '../../shared/handlers/image-encoder.js';
import { heldOutImages } from './photo-like-images.js';

/** A profiled node's kind, from the names the Keras import and onnxruntime's fusions give it. */
function kindOf(node: string): string {
  if (/depthwise/.test(node)) return 'depthwise Conv';
  if (/Conv1[/_]/.test(node)) return 'stem Conv';
  if (/expand|project|Conv_1\//.test(node)) return 'pointwise Conv';
  if (/Transpose|Reorder|QuantizeLinear/.test(node)) return 'layout, Q/DQ';
  return 'other';
}

interface Profile {
  byOpType: Map<string, number>;
  byKind: Map<string, number>;
}

async function profile(modelFile: string, input: ort.Tensor, runs: number): Promise<Profile> {
  const prefix = `int8-profile-${process.pid}-${path.basename(modelFile)}-b${input.dims[0]}`;
  const session = await ort.InferenceSession.create(modelFile, {
    intraOpNumThreads: 1,
    interOpNumThreads: 1,
    graphOptimizationLevel: 'all',
    enableProfiling: true,
    profileFilePrefix: path.join(tmpdir(), prefix),
    logSeverityLevel: 3,
  });
  // The first runs allocate and pre-pack weights: untimed, as in bench:quant.
  const warmup = 3;
  for (let i = 0; i < warmup + runs; i++) await session.run({ input });
  // onnxruntime-node returns no file name: the profile is `<prefix>_<date>.json`, written by the time the session is released.
  session.endProfiling();
  await session.release();
  const file = path.join(tmpdir(), readdirSync(tmpdir()).find((name) => name.startsWith(`${prefix}_`) && name.endsWith('.json'))!);
  const events = JSON.parse(readFileSync(file, 'utf8')) as { cat: string; name: string; dur: number; args?: { op_name?: string } }[];
  rmSync(file);
  const byOpType = new Map<string, number>();
  const byKind = new Map<string, number>();
  const add = (map: Map<string, number>, key: string, us: number) => map.set(key, (map.get(key) ?? 0) + us / 1000 / (warmup + runs));
  for (const e of events) {
    if (e.cat !== 'Node' || !e.name.endsWith('_kernel_time')) continue;
    add(byOpType, e.args?.op_name ?? '?', e.dur);
    add(byKind, kindOf(e.name), e.dur);
  }
  return { byOpType, byKind };
}

function table(title: string, fp32: Map<string, number>, int8: Map<string, number>): void {
  console.log(`\n${title} | fp32 ms | int8 ms`);
  const keys = [...new Set([...fp32.keys(), ...int8.keys()])].sort((a, b) => (fp32.get(b) ?? 0) + (int8.get(b) ?? 0) - (fp32.get(a) ?? 0) - (int8.get(a) ?? 0));
  const ms = (v: number | undefined) => (v === undefined ? '–' : v.toFixed(3));
  for (const k of keys) console.log(`${k} | ${ms(fp32.get(k))} | ${ms(int8.get(k))}`);
  const total = (m: Map<string, number>) => [...m.values()].reduce((a, b) => a + b, 0);
  console.log(`total | ${ms(total(fp32))} | ${ms(total(int8))}`);
}

async function main(args: string[]): Promise<void> {
  const option = (name: string, fallback: string) => (args.indexOf(name) >= 0 ? args[args.indexOf(name) + 1]! : fallback);
  const variant = option('--variant', 'mobilenet-v2-int8');
  const batches = option('--batches', '1,16').split(',').map(Number);
  const runs = Number(option('--runs', '20'));
  if (batches.some((b) => !(b >= 1)) || !(runs >= 1)) throw new Error(`--batches must list positive sizes and --runs be at least 1, got '${batches.join(',')}' and ${runs}`);
  const model = findModel(loadCatalog(), 'image-encoder');
  const fileOf = (name: string) => {
    const graph = model.variants[name]?.graphs[name];
    if (!graph) throw new Error(`image-encoder has no variant '${name}' — use one that models/catalog.yaml lists (${Object.keys(model.variants).join(', ')})`);
    return verifiedPath(graph);
  };
  const [fp32File, int8File] = [await fileOf('mobilenet-v2'), await fileOf(variant)];
  const held = await heldOutImages();
  const images = await Promise.all(held.slice(0, Math.max(...batches)).map((image) => decodeImage(image.bytes)));
  for (const batch of batches) {
    const feed = encoderInput(images.slice(0, batch), 224);
    const input = new ort.Tensor('float32', feed.data as Float32Array, feed.dims);
    const [fp32, int8] = [await profile(fp32File, input, runs), await profile(int8File, input, runs)];
    console.log(`\n## batch ${batch} (${runs} runs, mobilenet-v2 against ${variant}, one thread)`);
    table('node kind', fp32.byKind, int8.byKind);
    table('op type', fp32.byOpType, int8.byOpType);
  }
}

await main(process.argv.slice(2));
