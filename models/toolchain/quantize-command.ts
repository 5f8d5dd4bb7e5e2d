/** `splitinfer model quantize IN OUT --mode dynamic|static [...]`. */
import { statSync, writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { encodeModel } from '../onnx-graph.js';
import { ModelToolError, readModel } from './onnx-model.js';
import { DEFAULT_MIN_WEIGHT_ELEMENTS, quantizeDynamic } from './quantize-dynamic.js';
import type { QuantizeReport } from './quantize-weights.js';
import { assertLoadsInOnnxRuntime } from './verify-model.js';

const help = `usage: splitinfer model quantize IN OUT --mode dynamic|static [options]

Writes an INT8 copy of the ONNX model IN to OUT: per-channel symmetric int8
weights (zero point 0, [-127, 127]).

  --mode dynamic          activations quantized at run time (DynamicQuantizeLinear +
                          MatMulInteger, fused by onnxruntime into DynamicQuantizeMatMul;
                          LSTM → DynamicQuantizeLSTM, inside If/Loop bodies too); for
                          MatMul/Gemm-heavy and recurrent models. No calibration data.
  --mode static           QDQ with activation ranges calibrated on samples; for conv nets
    --calibration DIR     the calibration samples (required with --mode static)
    --method minmax|percentile   how ranges are taken from them (default minmax)
  --exclude NODE,...      node names to leave in FP32
  --min-weight-elements N (dynamic) MatMul/Gemm weights smaller than this stay FP32, where
                          INT8 is measured slower (default ${DEFAULT_MIN_WEIGHT_ELEMENTS})

Prints what was quantized, what stayed FP32 and why, and both file sizes.
The result must load in onnxruntime-node, or nothing is written.`;

const usageError = (message: string) => new ModelToolError(`${message}\n\n${help}`);

function parse(args: string[]) {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      mode: { type: 'string' },
      calibration: { type: 'string' },
      method: { type: 'string' },
      exclude: { type: 'string' },
      'min-weight-elements': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) return undefined;
  if (positionals.length !== 2) throw usageError(`quantize: expected IN and OUT model files, got ${positionals.length} argument(s)`);
  const [input, output] = positionals as [string, string];
  const mode = values.mode;
  if (mode !== 'dynamic' && mode !== 'static') throw usageError(`quantize: --mode must be 'dynamic' or 'static', got ${mode === undefined ? 'none' : `'${mode}'`}`);
  if (mode === 'dynamic' && (values.calibration !== undefined || values.method !== undefined)) {
    throw usageError('quantize: --calibration and --method only apply to --mode static (dynamic mode needs no calibration data)');
  }
  if (mode === 'static' && values.calibration === undefined) throw usageError('quantize: --mode static needs --calibration DIR, a folder of calibration samples');
  const method = values.method ?? 'minmax';
  if (method !== 'minmax' && method !== 'percentile') throw usageError(`quantize: --method must be 'minmax' or 'percentile', got '${method}'`);
  let minWeightElements = DEFAULT_MIN_WEIGHT_ELEMENTS;
  if (values['min-weight-elements'] !== undefined) {
    if (mode !== 'dynamic') throw usageError('quantize: --min-weight-elements only applies to --mode dynamic');
    minWeightElements = Number(values['min-weight-elements']);
    if (!Number.isInteger(minWeightElements) || minWeightElements < 0) {
      throw usageError(`quantize: --min-weight-elements must be a whole number ≥ 0, got '${values['min-weight-elements']}'`);
    }
  }
  const exclude = (values.exclude ?? '').split(',').map((s) => s.trim()).filter(Boolean);
  return { input, output, mode, calibrationDir: values.calibration, method, exclude, minWeightElements } as const;
}

export function formatReport(report: QuantizeReport): string {
  const lines = [`quantized ${report.quantized.length} node(s)${report.quantized.length ? `: ${report.quantized.join(', ')}` : ''}`];
  if (report.keptFloat.length) lines.push(`kept FP32 (${report.keptFloat.length}):`, ...report.keptFloat.map((k) => `  ${k.node}: ${k.reason}`));
  return lines.join('\n');
}

export async function main(args: string[]): Promise<number> {
  const options = parse(args);
  if (!options) {
    console.log(help);
    return 0;
  }
  const model = readModel(options.input);
  let report: QuantizeReport;
  if (options.mode === 'dynamic') {
    report = quantizeDynamic(model, { exclude: options.exclude, minWeightElements: options.minWeightElements });
  } else {
    // Loaded on demand: calibration pulls in onnxruntime sessions and sample readers dynamic mode never needs.
    const { quantizeStatic } = await import('./quantize-static.js');
    report = await quantizeStatic(model, { calibrationDir: options.calibrationDir!, method: options.method, exclude: options.exclude, modelFile: options.input });
  }
  console.log(formatReport(report));
  if (report.quantized.length === 0) {
    throw new ModelToolError(`${options.input}: nothing to quantize in --mode ${options.mode} (see above why each node stayed FP32) — nothing was written`);
  }
  const bytes = encodeModel(model);
  // Static mode has already run the result on a calibration sample.
  if (options.mode === 'dynamic') await assertLoadsInOnnxRuntime(bytes, 'quantized', `leave the node it names in FP32 with --exclude, or report the model`);
  writeFileSync(options.output, bytes);
  const before = statSync(options.input).size;
  console.log(`${options.input} ${before} bytes → ${options.output} ${bytes.length} bytes (${((bytes.length / before) * 100).toFixed(1)}%)`);
  return 0;
}
