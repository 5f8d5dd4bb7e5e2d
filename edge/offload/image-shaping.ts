/**
 * How an image is shaped before it crosses the link: re-encoded as a JPEG
 * whose long side fits `maxSide`, at `jpegQuality`. A model's catalog entry
 * declares the options it accepts (`payloadShaping`), each with the accuracy
 * it costs; the config's `offload.imageMaxSide` / `offload.jpegQuality` is
 * the one option of a model that declares none.
 */
import sharp from 'sharp';
import type { CatalogModel } from '../../shared/catalog.js';
import { maxImagePixels, type RgbImage } from '../../shared/handlers/image-decode.js';
import type { EdgeConfig } from '../config.js';

/** One way to shape an image: what the placement policy chooses between. */
export interface ShapingOption {
  /** e.g. `960px q75`. */
  name: string;
  maxSide: number;
  jpegQuality: number;
  /** Accuracy lost against the original (sum of the catalog's costs of the two levels). */
  accuracyCost: number;
}

/** What shaping one image did: what the payload estimator learns from. */
export interface ShapedImage {
  option: ShapingOption;
  /** Pixels of the JPEG written (0 when the input did not decode). */
  outputPixels: number;
  jpegBytes: number;
  /** The JPEG was not smaller (or the input did not decode), so the original was sent. */
  keptOriginal: boolean;
  prepareMs: number;
}

/** Every combination of the model's shaping levels; none for a model without payloadShaping. */
export function shapingOptionsOf(model: CatalogModel | undefined): ShapingOption[] {
  const shaping = model?.payloadShaping;
  if (!shaping) return [];
  return shaping.maxSide.flatMap((side) =>
    shaping.jpegQuality.map((quality) => ({
      name: `${side.value}px q${quality.value}`,
      maxSide: side.value,
      jpegQuality: quality.value,
      accuracyCost: Math.round((side.accuracyCost + quality.accuracyCost) * 1e4) / 1e4,
    })),
  );
}

/**
 * The shaping of an image no strategy shaped (a model without declared
 * options, or a strategy that does not shape): the config's, but never past
 * the largest side the model declares. Beyond that side the model's answer
 * does not change (the encoders resize to 224 or 299 px), so more pixels
 * would only cost uplink.
 */
export function defaultShaping(offload: Pick<EdgeConfig['offload'], 'imageMaxSide' | 'jpegQuality'>, model?: CatalogModel): ShapingOption {
  const { imageMaxSide, jpegQuality } = offload;
  const largest = model?.payloadShaping?.maxSide.reduce((best, level) => (level.value > best.value ? level : best));
  const capped = largest !== undefined && largest.value < imageMaxSide;
  const maxSide = capped ? largest.value : imageMaxSide;
  return { name: `${maxSide}px q${jpegQuality}`, maxSide, jpegQuality, accuracyCost: capped ? largest.accuracyCost : 0 };
}

/** Re-encodes an image as JPEG within maxSide, keeping the original when that is not smaller (or not decodable: the cloud then says why). */
export async function shapeImage(input: Uint8Array, option: ShapingOption): Promise<{ payload: Uint8Array; shaped: ShapedImage }> {
  const started = performance.now();
  try {
    // autoOrient first: the JPEG is written without the EXIF orientation the original relied on.
    const { data, info } = await sharp(input, { limitInputPixels: maxImagePixels })
      .autoOrient()
      .resize({ width: option.maxSide, height: option.maxSide, fit: 'inside', withoutEnlargement: true })
      .flatten({ background: '#ffffff' })
      .jpeg({ quality: option.jpegQuality })
      .toBuffer({ resolveWithObject: true });
    const keptOriginal = data.length >= input.length;
    return {
      payload: keptOriginal ? input : new Uint8Array(data.buffer, data.byteOffset, data.length),
      shaped: { option, outputPixels: info.width * info.height, jpegBytes: data.length, keptOriginal, prepareMs: performance.now() - started },
    };
  } catch {
    return { payload: input, shaped: { option, outputPixels: 0, jpegBytes: 0, keptOriginal: true, prepareMs: performance.now() - started } };
  }
}

/**
 * A video chunk's decoded frames as JPEGs within the option's size and
 * quality; `shaped` describes the average frame, which is what the payload
 * estimator learns per item.
 */
export async function shapeFrames(frames: readonly RgbImage[], option: ShapingOption): Promise<{ payloads: Uint8Array[]; shaped: ShapedImage }> {
  const started = performance.now();
  const encoded = await Promise.all(
    frames.map((frame) =>
      sharp(frame.data, { raw: { width: frame.width, height: frame.height, channels: 3 } })
        .resize({ width: option.maxSide, height: option.maxSide, fit: 'inside', withoutEnlargement: true })
        .jpeg({ quality: option.jpegQuality })
        .toBuffer({ resolveWithObject: true }),
    ),
  );
  const payloads = encoded.map(({ data }) => new Uint8Array(data.buffer, data.byteOffset, data.length));
  const n = Math.max(1, encoded.length);
  const outputPixels = encoded.reduce((sum, { info }) => sum + info.width * info.height, 0) / n;
  const jpegBytes = payloads.reduce((sum, p) => sum + p.length, 0) / n;
  return { payloads, shaped: { option, outputPixels, jpegBytes, keptOriginal: false, prepareMs: (performance.now() - started) / n } };
}
