/**
 * Dynamic INT8 quantization (`splitinfer model quantize --mode dynamic`):
 * weights become per-channel symmetric int8 at build time, activations are
 * quantized at run time from their own range, so no calibration data is
 * needed. Suits MatMul/Gemm-heavy and recurrent models.
 *
 * MatMul / Gemm with a constant weight B[K, N] become
 *
 *   DynamicQuantizeLinear(A) → (A_u8, a_scale, a_zp)
 *   MatMulInteger(A_u8, B_s8, a_zp) → Cast(float) → Mul(·, Mul(a_scale, b_scale[N])) [→ Add(bias)]
 *
 * the exact pattern onnxruntime's MatMulIntegerToFloatFusion and
 * DynamicQuantizeMatMulFusion (core/optimizer/) fuse into one
 * com.microsoft DynamicQuantizeMatMul on CPU: Mul's parents are the Cast and
 * the scale Mul (a_scale first), the bias Add takes the constant second, and
 * each DynamicQuantizeLinear feeds a single MatMulInteger.
 *
 * LSTM (also inside If/Loop bodies) becomes com.microsoft DynamicQuantizeLSTM,
 * with the layout onnxruntime's kernel expects: W [D, I, 4H] and R [D, H, 4H]
 * (transposed from ONNX's [D, 4H, I]), scales and int8 zero points (all 0,
 * which the kernel requires for int8) of shape [D, 4H], one per gate unit.
 */
import { createHash } from 'node:crypto';
import type { GraphProto, ModelProto, NodeProto, TensorProto } from 'onnx-buf';
import { MS_DOMAIN, node, tensor } from '../onnx-graph.js';
import { ConstantValues, type ConstantValue } from './constant-values.js';
import { freshNamer, removeUnused, subgraphsOf, useOpset } from './graph-edit.js';
import { allNodes, ModelToolError, nodeLabel } from './onnx-model.js';
import { findQuantizedNode, quantizeWeightsPerChannel, type QuantizeReport } from './quantize-weights.js';

export interface DynamicQuantizeOptions {
  /** Node names to leave in FP32. */
  exclude?: readonly string[];
  /**
   * MatMul/Gemm weights with fewer elements stay FP32: for them the run-time
   * quantization of the activation costs more than the int8 product saves.
   */
  minWeightElements?: number;
}

/**
 * Where INT8 starts to pay, measured with onnxruntime-node 1.30 on CPU (x64,
 * 1 intra-op thread, MatMul + bias alone, FP32 vs the fused INT8 form,
 * median of interleaved rounds), FP32 time / INT8 time at batch 1 and 16:
 * [128, 24] 0.75 / 0.92, [64, 64] 0.85 / 0.98, [128, 128] 0.95 / 1.07,
 * [256, 128] 0.99 / 1.42, [256, 256] 1.11 / 1.47, [512, 512] 1.80 / 1.96,
 * [16384, 128] 2.59 / 3.26. Smaller weights stay FP32.
 */
export const DEFAULT_MIN_WEIGHT_ELEMENTS = 32_768;

const FLOAT = 1;
const WEIGHT_OPS = new Set(['MatMul', 'Gemm', 'LSTM', 'Conv', 'ConvTranspose', 'GRU', 'RNN']);

function floatMatrix(value: ConstantValue | undefined): { dims: number[]; values: Float32Array } | undefined {
  if (!value || !(value.values instanceof Float32Array)) return undefined;
  return { dims: value.dims, values: value.values };
}

function transpose2d(values: Float32Array, rows: number, cols: number): Float32Array {
  const out = new Float32Array(values.length);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) out[c * rows + r] = values[r * cols + c]!;
  return out;
}

const attributeOf = (n: NodeProto, name: string) => n.attribute.find((a) => a.name === name);

/**
 * A node rewritten: what replaces it, and the weights the new nodes read.
 * The weights go into the main graph, which every subgraph can read: one
 * LSTM repeated in both branches of an If then stores them once.
 */
interface Rewrite {
  nodes: NodeProto[];
  initializers: TensorProto[];
}

type Attempt = Rewrite | { keep: string };

class DynamicQuantizer {
  readonly report: QuantizeReport = { quantized: [], keptFloat: [] };
  private readonly fresh: (base: string) => string;
  private readonly exclude: Set<string>;
  private readonly minWeightElements: number;
  private readonly sharedLstmWeights = new Map<string, { weight: string; scale: string; zero: string }>();

  constructor(
    private readonly model: ModelProto,
    options: DynamicQuantizeOptions,
  ) {
    this.fresh = freshNamer(model);
    this.exclude = new Set(options.exclude ?? []);
    this.minWeightElements = options.minWeightElements ?? DEFAULT_MIN_WEIGHT_ELEMENTS;
  }

  run(): QuantizeReport {
    this.checkNotQuantized();
    this.checkExcludedNamesExist();
    this.rewriteGraph(this.model.graph!, []);
    if (this.report.quantized.length > 0) {
      useOpset(this.model, MS_DOMAIN, 1);
      removeUnused(this.model);
    }
    return this.report;
  }

  private checkNotQuantized(): void {
    const found = findQuantizedNode(this.model.graph!);
    if (found) throw new ModelToolError(`the model is already quantized (it has ${found.opType} node '${nodeLabel(found)}') — quantize the FP32 model instead`);
  }

  private checkExcludedNamesExist(): void {
    const labels = new Set(allNodes(this.model.graph!).map(nodeLabel));
    const unknown = [...this.exclude].filter((label) => !labels.has(label));
    if (unknown.length > 0) {
      throw new ModelToolError(`--exclude: no node named ${unknown.map((n) => `'${n}'`).join(', ')} — use the node names that 'splitinfer model quantize' reports (or Netron shows)`);
    }
  }

  private rewriteGraph(graph: GraphProto, outer: GraphProto[]): void {
    const scope = [...outer, graph];
    const constants = new ConstantValues(scope);
    const rewritten: NodeProto[] = [];
    for (const n of graph.node) {
      for (const sub of subgraphsOf(n)) this.rewriteGraph(sub, scope);
      if (!WEIGHT_OPS.has(n.opType) || (n.domain !== '' && n.domain !== 'ai.onnx')) {
        rewritten.push(n);
        continue;
      }
      const attempt = this.exclude.has(nodeLabel(n)) ? { keep: 'excluded by --exclude' } : this.attempt(n, constants);
      if ('keep' in attempt) {
        this.report.keptFloat.push({ node: nodeLabel(n), reason: attempt.keep });
        rewritten.push(n);
        continue;
      }
      this.report.quantized.push(nodeLabel(n));
      rewritten.push(...attempt.nodes);
      this.model.graph!.initializer.push(...attempt.initializers);
    }
    graph.node = rewritten;
  }

  private attempt(n: NodeProto, constants: ConstantValues): Attempt {
    switch (n.opType) {
      case 'MatMul':
        return this.matMul(n, constants);
      case 'Gemm':
        return this.gemm(n, constants);
      case 'LSTM':
        return this.lstm(n, constants);
      case 'GRU':
      case 'RNN':
        return { keep: `onnxruntime has no dynamically quantized ${n.opType} kernel (only DynamicQuantizeLSTM)` };
      default:
        return { keep: `dynamic mode quantizes MatMul, Gemm and LSTM; ${n.opType} is left to --mode static (QDQ with calibration)` };
    }
  }

  private matMul(n: NodeProto, constants: ConstantValues): Attempt {
    const [a, b] = n.input;
    if (constants.valueOf(a!)) return { keep: 'both inputs are constant (nothing to compute at run time)' };
    const weight = floatMatrix(constants.valueOf(b!));
    if (!weight) return { keep: 'its B input is not a constant float tensor' };
    if (weight.dims.length !== 2) return { keep: `its weight has rank ${weight.dims.length}; only 2-D weights [K, N] are quantized` };
    return this.integerMatMul(n, a!, weight.dims, weight.values, 1, undefined, n.output[0]!);
  }

  private gemm(n: NodeProto, constants: ConstantValues): Attempt {
    const [a, b, c] = n.input;
    if (Number(attributeOf(n, 'transA')?.i ?? 0) !== 0) return { keep: 'transA = 1 is not quantized' };
    if (constants.valueOf(a!)) return { keep: 'both inputs are constant (nothing to compute at run time)' };
    const weight = floatMatrix(constants.valueOf(b!));
    if (!weight || weight.dims.length !== 2) return { keep: 'its B input is not a constant 2-D float tensor' };
    const transB = Number(attributeOf(n, 'transB')?.i ?? 0) === 1;
    const [rows, cols] = weight.dims as [number, number];
    const dims = transB ? [cols, rows] : [rows, cols];
    const values = transB ? transpose2d(weight.values, rows, cols) : weight.values;
    const alpha = attributeOf(n, 'alpha')?.f ?? 1;
    const beta = attributeOf(n, 'beta')?.f ?? 1;
    let bias: { name: string; init?: TensorProto } | undefined;
    if (c) {
      if (beta === 1) bias = { name: c };
      else {
        const cValue = floatMatrix(constants.valueOf(c));
        if (!cValue) return { keep: `beta = ${beta} with a C input that is not constant` };
        const name = this.fresh(`${n.name || n.output[0]}.bias_scaled`);
        bias = { name, init: tensor(name, cValue.dims, cValue.values.map((v) => v * beta)) };
      }
    }
    return this.integerMatMul(n, a!, dims, values, alpha, bias, n.output[0]!);
  }

  private integerMatMul(n: NodeProto, a: string, dims: number[], values: Float32Array, alpha: number, bias: { name: string; init?: TensorProto } | undefined, output: string): Attempt {
    if (values.length < this.minWeightElements) {
      return { keep: `weight [${dims.join(', ')}] has ${values.length} elements < ${this.minWeightElements}: quantizing the activation at run time costs more than INT8 saves` };
    }
    const base = n.name || output;
    const { q, scales } = quantizeWeightsPerChannel(values, dims, 1);
    const name = (suffix: string) => this.fresh(`${base}.${suffix}`);
    const [weightName, scaleName] = [name('weight_int8'), name('weight_scale')];
    const [aq, aScale, aZero, product, productFloat, scale] = ['a_quantized', 'a_scale', 'a_zero_point', 'int32', 'float', 'scale'].map(name) as [string, string, string, string, string, string];
    const scaled = bias ? name('scaled') : output;
    const nodes = [
      node('DynamicQuantizeLinear', [a], [aq, aScale, aZero]),
      node('MatMulInteger', [aq, weightName, aZero], [product]),
      node('Cast', [product], [productFloat], { to: { int: FLOAT } }),
      node('Mul', [aScale, scaleName], [scale]),
      node('Mul', [productFloat, scale], [scaled]),
      ...(bias ? [node('Add', [scaled, bias.name], [output])] : []),
    ];
    return {
      nodes,
      initializers: [tensor(weightName, dims, q), tensor(scaleName, [dims[1]!], alpha === 1 ? scales : scales.map((s) => s * alpha)), ...(bias?.init ? [bias.init] : [])],
    };
  }

  private lstm(n: NodeProto, constants: ConstantValues): Attempt {
    if (Number(attributeOf(n, 'layout')?.i ?? 0) !== 0) return { keep: 'layout = 1 (batch-major) has no DynamicQuantizeLSTM form' };
    const w = floatMatrix(constants.valueOf(n.input[1]!));
    const r = floatMatrix(constants.valueOf(n.input[2]!));
    if (!w || !r || w.dims.length !== 3 || r.dims.length !== 3) return { keep: 'its W or R input is not a constant 3-D float tensor' };
    const base = n.name || n.output[0]!;
    const name = (suffix: string) => this.fresh(`${base}.${suffix}`);
    const initializers: TensorProto[] = [];
    const quantized = (matrix: { dims: number[]; values: Float32Array }, label: string) => {
      // Exports often repeat one LSTM in both branches of an If (Silero VAD does).
      const key = `${matrix.dims.join('x')}:${createHash('sha256').update(new Uint8Array(matrix.values.buffer, matrix.values.byteOffset, matrix.values.byteLength)).digest('hex')}`;
      const known = this.sharedLstmWeights.get(key);
      if (known) return known;
      const [directions, gates, width] = matrix.dims as [number, number, number];
      // One scale per gate unit: channel axis 0 of [D·4H, width], then each direction transposed to [width, 4H].
      const { q, scales } = quantizeWeightsPerChannel(matrix.values, [directions * gates, width], 0);
      const transposed = new Int8Array(q.length);
      for (let d = 0; d < directions; d++) {
        for (let g = 0; g < gates; g++) for (let k = 0; k < width; k++) transposed[d * gates * width + k * gates + g] = q[d * gates * width + g * width + k]!;
      }
      const names = { weight: name(`${label}_int8`), scale: name(`${label}_scale`), zero: name(`${label}_zero_point`) };
      initializers.push(
        tensor(names.weight, [directions, width, gates], transposed),
        tensor(names.scale, [directions, gates], scales),
        tensor(names.zero, [directions, gates], new Int8Array(directions * gates)),
      );
      this.sharedLstmWeights.set(key, names);
      return names;
    };
    const wq = quantized(w, 'W');
    const rq = quantized(r, 'R');
    const optionalInputs = [3, 4, 5, 6, 7].map((i) => n.input[i] ?? '');
    const replacement = node('DynamicQuantizeLSTM', [n.input[0]!, wq.weight, rq.weight, ...optionalInputs, wq.scale, wq.zero, rq.scale, rq.zero], [...n.output], {}, MS_DOMAIN);
    replacement.name = this.fresh(`${base}_int8`);
    replacement.attribute = n.attribute.filter((a) => a.name !== 'layout');
    return { nodes: [replacement], initializers };
  }
}

/**
 * Rewrites `model` in place for dynamic INT8 and says, node by node, what
 * was quantized and what stayed FP32 and why. Weights the rewrite no longer
 * reads are removed.
 */
export function quantizeDynamic(model: ModelProto, options: DynamicQuantizeOptions = {}): QuantizeReport {
  return new DynamicQuantizer(model, options).run();
}
