/**
 * The two Keras image classifiers the npm package nsfwjs (MIT) ships in the
 * tfjs layers format, which the image-encoder family is imported from:
 * MobileNetV2 (the light one, for the edge) and InceptionV3 (the heavy one,
 * for the cloud). Both end in Dense 256 → Dense 128 → softmax over five
 * classes and take pixels / 255, NHWC.
 */
import { resolveSource } from '../../shared/catalog.js';

export const NSFWJS_CLASSES = ['drawing', 'hentai', 'neutral', 'porn', 'sexy'] as const;

export interface NsfwjsModel {
  /** The folder under the package, e.g. `npm:nsfwjs/dist/models/mobilenet_v2` (as catalog sources are written). */
  source: string;
  /** Square input side in pixels. */
  size: number;
  /** The imported ONNX file, relative to the package root. */
  onnxFile: string;
  /** The backbone's pooled features (the head's input, before Dense 256): exposed as the graph output `embedding`. */
  embeddingLayer: string;
}

export const nsfwjsModels = {
  'mobilenet-v2': { source: 'npm:nsfwjs/dist/models/mobilenet_v2', size: 224, onnxFile: 'models/image-encoder/mobilenet-v2.fp32.onnx', embeddingLayer: 'flatten_1' },
  'inception-v3': { source: 'npm:nsfwjs/dist/models/inception_v3', size: 299, onnxFile: 'models/image-encoder/inception-v3.fp32.onnx', embeddingLayer: 'flatten_1' },
} satisfies Record<string, NsfwjsModel>;

/** Imports one model as the image-encoder handler expects it: `input`, `probabilities`, `embedding`. */
export const importOptions = (model: NsfwjsModel) => ({ source: model.source, outputs: [`embedding=${model.embeddingLayer}`] });

/** The model's folder in the installed package (found through node's lookup paths: nsfwjs's exports map hides it). */
export const nsfwjsModelDir = (model: NsfwjsModel) => resolveSource(model.source);
