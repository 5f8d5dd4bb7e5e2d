/**
 * Reading a TensorFlow.js "layers" model from its folder: the Keras topology,
 * the weights manifest and the weight shards, in either of two layouts:
 * - `model.json` + binary shards (what tfjs `model.save('file://…')` and the
 *   tfjs converter write);
 * - `model.min.js` + `<shard>.min.js` (nsfwjs's bundles: each file is a
 *   browserify module whose export is the model object, or the shard's bytes
 *   as one base64 string).
 * Shards of a manifest group are joined in manifest order and cut into the
 * weights in the order the manifest lists them; quantized weights (the
 * manifest's `quantization` field) come back as float32.
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import vm from 'node:vm';
import { ModelToolError } from './onnx-model.js';

/** A weight as the layers read it: float32 values in the Keras layout (e.g. a Conv2D kernel is [kh, kw, in, out]). */
export interface TfjsWeight {
  shape: number[];
  values: Float32Array;
}

export interface TfjsModelFiles {
  /** The Keras model config: `{ class_name: 'Model' | 'Functional' | 'Sequential', config }`. */
  modelConfig: { class_name: string; config: Record<string, unknown> };
  /** By manifest name, e.g. `conv1/kernel`. */
  weights: Map<string, TfjsWeight>;
  /** The files read, for reports. */
  files: string[];
}

export interface ManifestEntry {
  name: string;
  shape: number[];
  dtype: string;
  quantization?: { dtype: string; min?: number; scale?: number };
}

interface ManifestGroup {
  paths: string[];
  weights: ManifestEntry[];
}

/** The export of a browserify bundle: a JS object literal (unquoted keys, `!1`), not JSON, so it is evaluated, in a context of its own. */
function bundleExport(file: string): unknown {
  const module = { exports: {} as unknown };
  try {
    vm.runInNewContext(readFileSync(file, 'utf8'), { module, exports: module.exports }, { filename: file, timeout: 10_000 });
  } catch (err) {
    throw new ModelToolError(`${file}: not a tfjs model bundle (${(err as Error).message}) — pass the folder holding model.json or nsfwjs's model.min.js`);
  }
  // Through JSON: plain data of this realm (objects made inside the context fail `instanceof` checks here, tfjs's among them).
  return JSON.parse(JSON.stringify(module.exports));
}

function readJson(file: string): unknown {
  try {
    return JSON.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    throw new ModelToolError(`${file}: not a tfjs model.json (${(err as Error).message})`);
  }
}

/** A base64 shard bundle holds `….exports="<base64>"`; read it as text, no evaluation needed. */
function wrappedShardBytes(file: string): Uint8Array {
  const match = /\.exports\s*=\s*"([A-Za-z0-9+/=]*)"/.exec(readFileSync(file, 'utf8'));
  if (!match) throw new ModelToolError(`${file}: no base64 weight string in it — expected a shard bundle as nsfwjs ships them`);
  return Buffer.from(match[1]!, 'base64');
}

const bytesPerElement: Record<string, number> = { float32: 4, uint8: 1, uint16: 2 };

/** The weight `entry` at `offset` of its group's joined shards, and the bytes it took. */
function decodeWeight(entry: ManifestEntry, data: Uint8Array, offset: number, where: string): { weight: TfjsWeight; size: number } {
  const q = entry.quantization;
  if (entry.dtype !== 'float32') throw new ModelToolError(`${where}: weight '${entry.name}' is ${entry.dtype}; the importer reads float32 weights only`);
  if (q && q.dtype !== 'uint8' && q.dtype !== 'uint16') {
    throw new ModelToolError(`${where}: weight '${entry.name}' is quantized as ${q.dtype}; the importer reads uint8 and uint16 quantization — convert the model with --quantize_uint8`);
  }
  const count = entry.shape.reduce((n, d) => n * d, 1);
  const size = count * bytesPerElement[q?.dtype ?? entry.dtype]!;
  if (offset + size > data.length) {
    throw new ModelToolError(`${where}: the shards hold ${data.length} bytes, too few for weight '${entry.name}' at byte ${offset} — a shard is truncated or missing`);
  }
  // A copy: the typed arrays below need the alignment a fresh buffer has.
  const aligned = data.slice(offset, offset + size).buffer;
  if (!q) return { weight: { shape: entry.shape, values: new Float32Array(aligned) }, size };
  const quantized = q.dtype === 'uint8' ? new Uint8Array(aligned) : new Uint16Array(aligned);
  const values = new Float32Array(count);
  // As tfjs dequantizes (io_utils decodeWeights), so both sides see the same float32 values.
  for (let i = 0; i < count; i++) values[i] = quantized[i]! * q.scale! + q.min!;
  return { weight: { shape: entry.shape, values }, size };
}

function concat(parts: Uint8Array[]): Uint8Array {
  const joined = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let offset = 0;
  for (const part of parts) {
    joined.set(part, offset);
    offset += part.length;
  }
  return joined;
}

/**
 * The model in `dir` as tfjs's own loaders see it (a tfjs `ModelArtifacts`):
 * topology, the weight specs of all manifest groups in order, and all shard
 * bytes joined in the same order, still quantized.
 */
export interface TfjsArtifacts {
  modelTopology: Record<string, unknown>;
  weightSpecs: ManifestEntry[];
  weightData: Uint8Array;
  /** The files read, the model file first. */
  files: string[];
}

/** Reads the files of the model in `dir` (model.json, else model.min.js). */
export function readTfjsArtifacts(dir: string): TfjsArtifacts {
  const json = path.join(dir, 'model.json');
  const bundle = path.join(dir, 'model.min.js');
  const wrapped = !existsSync(json) && existsSync(bundle);
  if (!existsSync(json) && !wrapped) throw new ModelToolError(`${dir}: no model.json or model.min.js in it — pass the folder of a tfjs layers model`);
  const entry = wrapped ? bundle : json;
  const model = (wrapped ? bundleExport(bundle) : readJson(json)) as { modelTopology?: Record<string, unknown>; weightsManifest?: ManifestGroup[]; format?: string };
  if (model.format === 'graph-model' || !model.modelTopology) {
    throw new ModelToolError(`${entry}: not a tfjs layers model (format ${model.format ?? 'unknown'}, no Keras modelTopology) — the importer reads Keras models saved by tfjs or the tfjs converter's --output_format tfjs_layers_model`);
  }
  const groups = model.weightsManifest ?? [];
  const shardFiles = groups.flatMap((group) => group.paths.map((p) => path.join(dir, wrapped ? `${p}.min.js` : p)));
  const missing = shardFiles.find((f) => !existsSync(f));
  if (missing) throw new ModelToolError(`${entry}: weight shard ${path.basename(missing)} is missing — keep the shards beside the model file`);
  return {
    modelTopology: model.modelTopology,
    weightSpecs: groups.flatMap((group) => group.weights),
    weightData: concat(shardFiles.map((f) => (wrapped ? wrappedShardBytes(f) : new Uint8Array(readFileSync(f))))),
    files: [entry, ...shardFiles],
  };
}

/** Reads the model in `dir` with all its weights as float32. */
export function readTfjsModel(dir: string): TfjsModelFiles {
  const artifacts = readTfjsArtifacts(dir);
  const weights = new Map<string, TfjsWeight>();
  let offset = 0;
  for (const spec of artifacts.weightSpecs) {
    const { weight, size } = decodeWeight(spec, artifacts.weightData, offset, artifacts.files[0]!);
    weights.set(spec.name, weight);
    offset += size;
  }
  // tfjs writes the model config as the topology; Keras-converted files wrap it in model_config.
  const modelConfig = (artifacts.modelTopology.model_config ?? artifacts.modelTopology) as TfjsModelFiles['modelConfig'];
  return { modelConfig, weights, files: artifacts.files };
}
