/**
 * The tfjs (Keras) layers that work on images: convolutions, padding and
 * pooling, NHWC in Keras, NCHW in the ONNX graph. TF's "same" padding is
 * written as explicit pads from the static input size: with stride 2 TF pads
 * the bottom/right one more than the top/left when the total is odd, which
 * ONNX's symmetric defaults would get wrong.
 */
import type { AttributeValue } from '../onnx-graph.js';
import { activate } from './tfjs-activations.js';
import { isImage, layerError, transposeValues, unsupported, type Converter, type TfjsGraphBuilder, type Value } from './tfjs-graph-builder.js';
import type { LayerCall } from './tfjs-topology.js';

/** Keras takes a size per axis as `n` or `[n, m]`. */
function pair(call: LayerCall, option: string, fallback?: [number, number]): [number, number] {
  const value = call.config[option] ?? fallback;
  if (typeof value === 'number') return [value, value];
  if (Array.isArray(value) && value.length === 2 && value.every((v) => Number.isInteger(v))) return value as [number, number];
  throw unsupported(call, option, 'expected a number or [height, width]');
}

function imageInput(call: LayerCall, inputs: Value[]): Value {
  const [input] = inputs;
  if (inputs.length !== 1 || !input || !isImage(input)) {
    throw layerError(call, `expects one image input [height, width, channels], got ${inputs.map((v) => `[${v.shape.join(', ')}]`).join(', ')}`);
  }
  if ((call.config.data_format ?? 'channels_last') !== 'channels_last') throw unsupported(call, 'data_format', "the importer reads 'channels_last' (NHWC) models");
  return input;
}

interface Window {
  kernel: [number, number];
  strides: [number, number];
  dilations: [number, number];
}

/** ONNX pads [top, left, bottom, right] and the output [height, width] of a window sliding over `size` with Keras padding. */
function windowPads(call: LayerCall, size: [number, number], window: Window): { pads: number[]; out: [number, number] } {
  const padding = call.config.padding ?? 'valid';
  if (padding !== 'same' && padding !== 'valid') throw unsupported(call, 'padding', "the importer reads 'same' and 'valid'");
  const before: number[] = [];
  const after: number[] = [];
  const out = [0, 1].map((axis) => {
    const extent = (window.kernel[axis]! - 1) * window.dilations[axis]! + 1;
    const stride = window.strides[axis]!;
    const length = padding === 'same' ? Math.ceil(size[axis]! / stride) : Math.floor((size[axis]! - extent) / stride) + 1;
    if (length < 1) throw layerError(call, `a ${window.kernel.join('×')} window does not fit the ${size.join('×')} input`);
    const total = padding === 'same' ? Math.max((length - 1) * stride + extent - size[axis]!, 0) : 0;
    before.push(Math.floor(total / 2));
    after.push(total - Math.floor(total / 2));
    return length;
  });
  return { pads: [...before, ...after], out: out as [number, number] };
}

/** Conv2D and DepthwiseConv2D: Keras kernels [kh, kw, in, out|multiplier] become ONNX weights [out, in/group, kh, kw]. */
function convolution(depthwise: boolean): Converter {
  return (call, inputs, g) => {
    const input = imageInput(call, inputs);
    const [channels, height, width] = input.shape as [number, number, number];
    if ((call.config.groups ?? 1) !== 1) throw unsupported(call, 'groups', 'the importer reads ungrouped Conv2D (DepthwiseConv2D for one group per channel)');
    const kernel = g.weight(call, depthwise ? 'depthwise_kernel' : 'kernel');
    const [kh, kw, kernelIn, kernelOut] = kernel.shape as [number, number, number, number];
    if (kernelIn !== channels) throw layerError(call, `kernel reads ${kernelIn} channels, the input has ${channels}`);
    // A depthwise kernel [kh, kw, in, m] as [in, m, kh, kw] is grouped Conv's [in·m, 1, kh, kw]: output channel c·m + k, as TF orders it.
    const outChannels = depthwise ? channels * kernelOut : kernelOut;
    const weightDims = depthwise ? [outChannels, 1, kh, kw] : [outChannels, channels, kh, kw];
    const window = { kernel: [kh, kw] as [number, number], strides: pair(call, 'strides', [1, 1]), dilations: pair(call, 'dilation_rate', [1, 1]) };
    const { pads, out } = windowPads(call, [height, width], window);
    const conv = [
      input.name,
      g.constant(`${call.name}/weight`, weightDims, transposeValues(kernel.values, kernel.shape, depthwise ? [2, 3, 0, 1] : [3, 2, 0, 1])),
    ];
    if (call.config.use_bias ?? true) {
      const bias = g.weight(call, 'bias');
      conv.push(g.constant(`${call.name}/bias`, [outChannels], bias.values));
    }
    const attributes = { kernel_shape: { ints: window.kernel }, strides: { ints: window.strides }, dilations: { ints: window.dilations }, pads: { ints: pads }, group: { int: depthwise ? channels : 1 } };
    const output = { name: g.op('Conv', conv, `${call.name}/conv`, attributes), shape: [outChannels, ...out] };
    return activate(call, output, call.config.activation ?? 'linear', g);
  };
}

function pooling(opType: 'MaxPool' | 'AveragePool'): Converter {
  return (call, inputs, g) => {
    const input = imageInput(call, inputs);
    const [channels, height, width] = input.shape as [number, number, number];
    const kernel = pair(call, 'pool_size', [2, 2]);
    const window = { kernel, strides: pair(call, 'strides', kernel), dilations: [1, 1] as [number, number] };
    const { pads, out } = windowPads(call, [height, width], window);
    // TF's "same" average leaves the padded cells out of the count.
    const average: Record<string, AttributeValue> = opType === 'AveragePool' ? { count_include_pad: { int: 0 } } : {};
    const name = g.op(opType, [input.name], `${call.name}/pool`, { kernel_shape: { ints: kernel }, strides: { ints: window.strides }, pads: { ints: pads }, ...average });
    return { name, shape: [channels, ...out] };
  };
}

function globalPooling(opType: 'GlobalAveragePool' | 'GlobalMaxPool'): Converter {
  return (call, inputs, g) => {
    const input = imageInput(call, inputs);
    const pooled = g.op(opType, [input.name], `${call.name}/pool`);
    if (call.config.keepdims) return { name: pooled, shape: [input.shape[0]!, 1, 1] };
    return { name: g.op('Flatten', [pooled], `${call.name}/flatten`, { axis: { int: 1 } }), shape: [input.shape[0]!] };
  };
}

/** ZeroPadding2D's `padding`: n, [h, w], or [[top, bottom], [left, right]]. */
function zeroPadding(call: LayerCall, inputs: Value[], g: TfjsGraphBuilder): Value {
  const input = imageInput(call, inputs);
  const padding = call.config.padding ?? 1;
  const nested = Array.isArray(padding) && padding.every((p) => Array.isArray(p) && p.length === 2);
  const [[top, bottom], [left, right]] = (nested ? padding : pair(call, 'padding', [1, 1]).map((p) => [p, p])) as [[number, number], [number, number]];
  const pads = g.constant(`${call.name}/pads`, [8], BigInt64Array.from([0, 0, top, left, 0, 0, bottom, right].map(BigInt)));
  const [channels, height, width] = input.shape as [number, number, number];
  return { name: g.op('Pad', [input.name, pads], `${call.name}/pad`), shape: [channels, height + top + bottom, width + left + right] };
}

export const spatialLayers: Record<string, Converter> = {
  Conv2D: convolution(false),
  DepthwiseConv2D: convolution(true),
  ZeroPadding2D: zeroPadding,
  MaxPooling2D: pooling('MaxPool'),
  AveragePooling2D: pooling('AveragePool'),
  GlobalAveragePooling2D: globalPooling('GlobalAveragePool'),
  GlobalMaxPooling2D: globalPooling('GlobalMaxPool'),
};
