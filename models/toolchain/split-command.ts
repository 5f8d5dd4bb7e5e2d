/** `splitinfer model split IN.onnx --at VALUE [--head OUT] [--tail OUT]`. */
import { writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import ort from 'onnxruntime-node';
import { clone } from '@bufbuild/protobuf';
import { ModelProtoSchema, TensorProto_DataType, type ModelProto, type ValueInfoProto } from 'onnx-buf';
import { encodeModel, valueInfo, type Dim, type ElementType } from '../onnx-graph.js';
import { seededRandom } from '../../shared/seeded-random.js';
import { dataTypeName, ModelToolError, readModel } from './onnx-model.js';
import { checkCut, cutCandidates, splitModel, untypedValue } from './split.js';
import { runInOnnxRuntime } from './verify-model.js';

const help = `usage: splitinfer model split IN.onnx --at VALUE [--head OUT] [--tail OUT]
       splitinfer model split IN.onnx --list

Splits IN at the value VALUE (a node output): the head computes VALUE from
IN's inputs and returns it, the tail takes VALUE as its one input and
computes IN's outputs. VALUE must be the only value that crosses from one
side to the other. Both parts must load in onnxruntime-node, and the head
followed by the tail must give IN's outputs on a sample input (max abs
difference ≤ ${1e-5}), or nothing is written.

  --at VALUE   where to cut
  --head OUT   the head's file (default IN with .head.onnx)
  --tail OUT   the tail's file (default IN with .tail.onnx)
  --list       print the values that cut IN, in node order`;

/** The largest difference head → tail may show against the whole model on the CPU. */
export const SPLIT_TOLERANCE = 1e-5;

export interface SplitReport {
  head: Uint8Array;
  tail: Uint8Array;
  /** The cut value on the sample input: its element type and dims (batch 1). */
  cut: { name: string; type: ElementType; dims: number[] };
  /** Largest |head → tail − whole model| over every output. */
  maxAbsDiff: number;
}

const elementTypes: Partial<Record<TensorProto_DataType, { type: ElementType; sample: (n: number, random: () => number) => ort.Tensor['data'] }>> = {
  [TensorProto_DataType.FLOAT]: { type: 'float32', sample: (n, random) => Float32Array.from({ length: n }, random) },
  [TensorProto_DataType.INT64]: { type: 'int64', sample: (n) => new BigInt64Array(n) },
  [TensorProto_DataType.INT32]: { type: 'int32', sample: (n) => new Int32Array(n) },
  [TensorProto_DataType.UINT8]: { type: 'uint8', sample: (n, random) => Uint8Array.from({ length: n }, () => Math.floor(random() * 256)) },
};

/** A seeded sample for each input: floats in [0, 1), integers 0; symbolic dimensions 1. */
export function sampleFeeds(model: ModelProto): Record<string, ort.Tensor> {
  const random = seededRandom(7);
  const weights = new Set(model.graph!.initializer.map((t) => t.name));
  const feeds: Record<string, ort.Tensor> = {};
  for (const input of model.graph!.input.filter((v) => !weights.has(v.name))) {
    const tensorType = input.type?.value.case === 'tensorType' ? input.type.value.value : undefined;
    const element = tensorType ? elementTypes[tensorType.elemType as TensorProto_DataType] : undefined;
    if (!tensorType || !element) {
      throw new ModelToolError(`input '${input.name}' is ${tensorType ? dataTypeName(tensorType.elemType) : 'not a tensor'}: split makes sample inputs of float32, int64, int32 and uint8 tensors only`);
    }
    const dims = (tensorType.shape?.dim ?? []).map((d) => (d.value.case === 'dimValue' ? Number(d.value.value) : 1));
    feeds[input.name] = new ort.Tensor(element.type, element.sample(dims.reduce((n, d) => n * d, 1), random) as Float32Array, dims);
  }
  return feeds;
}

/**
 * How the cut is declared: its element type, and its dims as seen on the
 * sample with the batch dimension left free when the inputs' only free
 * dimension is their batch; otherwise every dimension is left free.
 */
function cutValueInfo(model: ModelProto, name: string, seen: ort.Tensor): ValueInfoProto {
  const type = Object.values(elementTypes).find((e) => e.type === seen.type)?.type;
  if (!type) throw new ModelToolError(`--at ${name}: the value is ${seen.type}; split passes float32, int64, int32 and uint8 values only`);
  const inputDims = model.graph!.input.map((v) => (v.type?.value.case === 'tensorType' ? (v.type.value.value.shape?.dim ?? []) : []));
  const freeDims = inputDims.flatMap((dims) => dims.flatMap((d, i) => (d.value.case === 'dimValue' ? [] : [{ i, d }])));
  const batch = freeDims.every(({ i }) => i === 0) ? freeDims[0]?.d : undefined;
  const dims: Dim[] = seen.dims.map((d, i) => (freeDims.length === 0 ? d : batch ? (i === 0 ? (batch.value.case === 'dimParam' ? batch.value.value : 'N') : d) : `${name}_d${i}`));
  return valueInfo(name, type, dims);
}

function maxAbsDiff(expected: ort.Tensor, actual: ort.Tensor | undefined, name: string): number {
  if (!actual || actual.dims.join() !== expected.dims.join()) {
    throw new ModelToolError(`head → tail gives output '${name}' as ${actual ? `[${actual.dims.join(', ')}]` : 'nothing'}, the model [${expected.dims.join(', ')}] — nothing was written; report the model`);
  }
  let max = 0;
  const a = expected.data as ArrayLike<number | bigint>;
  const b = actual.data as ArrayLike<number | bigint>;
  for (let i = 0; i < a.length; i++) max = Math.max(max, Math.abs(Number(a[i]!) - Number(b[i]!)));
  return max;
}

/** Splits `model` at `at` and checks both parts on a sample input against the whole model; throws unless they reproduce it. */
export async function splitVerified(model: ModelProto, at: string, feeds: Record<string, ort.Tensor> = sampleFeeds(model)): Promise<SplitReport> {
  checkCut(model, at);
  const hint = 'report the model and the value you cut at';
  // The whole model, with the cut exposed: its outputs are the reference, and the cut's type and dims are what the parts declare.
  const probe = clone(ModelProtoSchema, model);
  probe.graph!.output.push(untypedValue(at));
  const whole = (await runInOnnxRuntime(encodeModel(probe), 'whole', hint, feeds))!;
  const cut = whole[at]!;
  const { head, tail } = splitModel(model, at, cutValueInfo(model, at, cut));
  const headBytes = encodeModel(head);
  const tailBytes = encodeModel(tail);
  const headOut = (await runInOnnxRuntime(headBytes, 'head', hint, feeds))!;
  const tailOut = (await runInOnnxRuntime(tailBytes, 'tail', hint, { [at]: headOut[at]! }))!;
  let diff = 0;
  for (const output of model.graph!.output) diff = Math.max(diff, maxAbsDiff(whole[output.name]!, tailOut[output.name], output.name));
  if (!(diff <= SPLIT_TOLERANCE)) {
    throw new ModelToolError(`head → tail differs from the whole model by up to ${diff} (allowed ${SPLIT_TOLERANCE}) — nothing was written; ${hint}`);
  }
  return { head: headBytes, tail: tailBytes, cut: { name: at, type: cut.type as ElementType, dims: [...cut.dims] }, maxAbsDiff: diff };
}

export async function main(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: { at: { type: 'string' }, head: { type: 'string' }, tail: { type: 'string' }, list: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } },
  });
  if (values.help) {
    console.log(help);
    return 0;
  }
  if (positionals.length !== 1) throw new ModelToolError(`split: expected one model file IN.onnx, got ${positionals.length} argument(s)\n\n${help}`);
  const [input] = positionals as [string];
  const model = readModel(input);
  if (values.list) {
    console.log(cutCandidates(model).join('\n'));
    return 0;
  }
  if (values.at === undefined) throw new ModelToolError(`split: --at VALUE is required: the value to cut at (--list prints the values that cut ${input})\n\n${help}`);
  const stem = input.replace(/\.onnx$/i, '');
  const headFile = values.head ?? `${stem}.head.onnx`;
  const tailFile = values.tail ?? `${stem}.tail.onnx`;
  const report = await splitVerified(model, values.at);
  writeFileSync(headFile, report.head);
  writeFileSync(tailFile, report.tail);
  const { cut } = report;
  const cutBytes = cut.dims.reduce((n, d) => n * d, 1) * (cut.type === 'int64' ? 8 : cut.type === 'uint8' ? 1 : 4);
  console.log(
    [
      `cut ${cut.name}: ${cut.type} [${cut.dims.join(', ')}], ${cutBytes} bytes per sample`,
      `head ${headFile} ${report.head.length} bytes`,
      `tail ${tailFile} ${report.tail.length} bytes`,
      `head → tail against ${input}: max abs difference ${report.maxAbsDiff}${report.maxAbsDiff === 0 ? ' (bit-exact)' : ''}`,
    ].join('\n'),
  );
  return 0;
}
