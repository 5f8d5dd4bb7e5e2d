/**
 * Activation ranges for static quantization, measured by running the FP32
 * model in onnxruntime-node over real samples with the tensors of interest
 * added as graph outputs.
 *
 * A calibration folder holds one sample per `*.pb` file: a KServe v2
 * ModelInferRequest (binary protobuf) carrying the model's inputs, the
 * project's one tensor wire format (see shared/tensor-codec.ts). Samples
 * are made by the code that feeds the model in production, e.g.
 * models/image-ocr/calibration-samples.ts for the OCR graphs.
 */
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { clone, create, fromBinary, toBinary } from '@bufbuild/protobuf';
import ort from 'onnxruntime-node';
import { ModelProtoSchema, type ModelProto } from 'onnx-buf';
import { ModelInferRequestSchema } from '../../shared/gen/inference/grpc_service_pb.js';
import { decodeInferInputs, encodeInferInputs } from '../../shared/tensor-codec.js';
import type { Tensor } from '../../shared/tensor.js';
import { encodeModel, valueInfo } from '../onnx-graph.js';
import { ModelToolError } from './onnx-model.js';

export type CalibrationMethod = 'minmax' | 'percentile';

export interface TensorRange {
  min: number;
  max: number;
}

/**
 * Share of values kept inside the range by the percentile method, on each
 * side: onnxruntime's quantizer default (99.999), which clips only the rare
 * outliers that would otherwise stretch the 256 levels of a uint8 tensor.
 */
export const keptPercentile = 99.999;
const histogramBins = 2048;

const sampleExtension = '.pb';

/** Writes one calibration sample (the model's inputs by name) as `<name>.pb` in `dir`. */
export function writeCalibrationSample(dir: string, name: string, feeds: Record<string, Tensor>): void {
  mkdirSync(dir, { recursive: true });
  const request = create(ModelInferRequestSchema, { modelName: name, ...encodeInferInputs(feeds) });
  writeFileSync(path.join(dir, `${name}${sampleExtension}`), toBinary(ModelInferRequestSchema, request));
}

/** The sample files of a calibration folder, sorted, or an error saying what the folder must hold. */
export function calibrationSampleFiles(dir: string): string[] {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch (err) {
    throw new ModelToolError(`calibration folder ${dir}: cannot read it (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
  }
  const files = names.filter((n) => n.endsWith(sampleExtension)).sort().map((n) => path.join(dir, n));
  if (files.length === 0) {
    throw new ModelToolError(
      `calibration folder ${dir} holds no ${sampleExtension} samples — it needs one KServe v2 ModelInferRequest per sample, with the model's inputs (write them with writeCalibrationSample)`,
    );
  }
  return files;
}

/** One sample's feeds, checked against the inputs the model declares. */
export function readCalibrationSample(file: string, inputNames: readonly string[]): Record<string, ort.Tensor> {
  let tensors: Record<string, Tensor>;
  try {
    tensors = decodeInferInputs(fromBinary(ModelInferRequestSchema, readFileSync(file)));
  } catch (err) {
    throw new ModelToolError(`calibration sample ${file}: not a KServe v2 ModelInferRequest (${(err as Error).message}) — write samples with writeCalibrationSample`);
  }
  const missing = inputNames.filter((name) => !(name in tensors));
  if (missing.length > 0) {
    throw new ModelToolError(
      `calibration sample ${file} has inputs [${Object.keys(tensors).join(', ')}], the model needs [${inputNames.join(', ')}] — make the samples for this model`,
    );
  }
  const feeds: Record<string, ort.Tensor> = {};
  for (const name of inputNames) {
    const t = tensors[name]!;
    if (t.type === 'bytes') throw new ModelToolError(`calibration sample ${file}: input '${name}' is a BYTES tensor; models here take numeric inputs`);
    feeds[name] = new ort.Tensor(t.type, t.data as ort.Tensor['data'] & ArrayLike<number>, t.dims);
  }
  return feeds;
}

/** The model's graph input names that are not initializers (what a sample must feed). */
export function feedNames(model: ModelProto): string[] {
  const graph = model.graph!;
  const constants = new Set(graph.initializer.map((t) => t.name));
  return graph.input.map((i) => i.name).filter((name) => !constants.has(name));
}

/** A session over a copy of `model` that also returns the named float tensors. */
async function probeSession(model: ModelProto, tensorNames: readonly string[]): Promise<ort.InferenceSession> {
  const probe = clone(ModelProtoSchema, model);
  const graph = probe.graph!;
  const outputs = new Set(graph.output.map((o) => o.name));
  for (const name of tensorNames) if (!outputs.has(name)) graph.output.push(valueInfo(name, 'float32'));
  try {
    return await ort.InferenceSession.create(encodeModel(probe), { graphOptimizationLevel: 'basic', logSeverityLevel: 3 });
  } catch (err) {
    throw new ModelToolError(`the FP32 model does not load in onnxruntime-node, so it cannot be calibrated: ${(err as Error).message}`);
  }
}

async function runSample(session: ort.InferenceSession, file: string, inputNames: readonly string[], tensorNames: readonly string[]) {
  try {
    return await session.run(readCalibrationSample(file, inputNames), [...tensorNames]);
  } catch (err) {
    if (err instanceof ModelToolError) throw err;
    throw new ModelToolError(`calibration sample ${file}: the FP32 model failed on it: ${(err as Error).message}`);
  }
}

function floatData(outputs: ort.InferenceSession.OnnxValueMapType, name: string): Float32Array {
  const data = outputs[name]?.data;
  if (!(data instanceof Float32Array)) throw new ModelToolError(`tensor '${name}' is not float32; only float tensors are quantized`);
  return data;
}

function minMaxOf(data: Float32Array, into: TensorRange): void {
  let { min, max } = into;
  for (let i = 0; i < data.length; i++) {
    const v = data[i]!;
    if (v < min) min = v;
    if (v > max) max = v;
  }
  into.min = min;
  into.max = max;
}

/** The values at the lower and upper `keptPercentile` of a histogram over [range.min, range.max]. */
function percentileRange(histogram: Float64Array, range: TensorRange): TensorRange {
  const total = histogram.reduce((a, b) => a + b, 0);
  const tail = total * (1 - keptPercentile / 100);
  const width = (range.max - range.min) / histogram.length;
  let low = 0;
  for (let seen = 0; low < histogram.length - 1 && seen + histogram[low]! <= tail; low++) seen += histogram[low]!;
  let high = histogram.length - 1;
  for (let seen = 0; high > 0 && seen + histogram[high]! <= tail; high--) seen += histogram[high]!;
  return { min: range.min + low * width, max: range.min + (high + 1) * width };
}

/**
 * The range of each named float tensor over all samples in `sampleFiles`:
 * min and max (minmax), or the central `keptPercentile` of the values
 * (percentile: a second pass fills a histogram over the minmax range).
 */
export async function collectRanges(
  model: ModelProto,
  tensorNames: readonly string[],
  sampleFiles: readonly string[],
  method: CalibrationMethod,
): Promise<Map<string, TensorRange>> {
  const inputNames = feedNames(model);
  const session = await probeSession(model, tensorNames);
  try {
    const ranges = new Map(tensorNames.map((name) => [name, { min: Infinity, max: -Infinity }]));
    for (const file of sampleFiles) {
      const outputs = await runSample(session, file, inputNames, tensorNames);
      for (const name of tensorNames) minMaxOf(floatData(outputs, name), ranges.get(name)!);
    }
    if (method === 'minmax') return ranges;

    const histograms = new Map(tensorNames.map((name) => [name, new Float64Array(histogramBins)]));
    for (const file of sampleFiles) {
      const outputs = await runSample(session, file, inputNames, tensorNames);
      for (const name of tensorNames) {
        const { min, max } = ranges.get(name)!;
        const histogram = histograms.get(name)!;
        const perBin = max > min ? histogramBins / (max - min) : 0;
        const data = floatData(outputs, name);
        for (let i = 0; i < data.length; i++) histogram[Math.min(histogramBins - 1, Math.floor((data[i]! - min) * perBin))]! += 1;
      }
    }
    return new Map(tensorNames.map((name) => [name, percentileRange(histograms.get(name)!, ranges.get(name)!)]));
  } finally {
    await session.release();
  }
}
