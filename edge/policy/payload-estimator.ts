/**
 * What an image becomes before it crosses the link, for each payload-shaping
 * option of its model (catalog `payloadShaping`): its pixels after resizing,
 * its JPEG bytes, and the edge time spent shrinking it. Predicting rather
 * than encoding every option keeps the decision cheap. JPEG size is modelled
 * as pixels × bytes-per-pixel at the quality, from libjpeg's typical size at
 * each quality relative to quality 75, times a factor learned from this
 * device's own shrinks (documents compress far better than photos). The
 * offload client keeps the original when the JPEG is not smaller, and so
 * does the prediction.
 */
import type { ShapedImage, ShapingOption } from '../offload/image-shaping.js';
import type { ItemSize } from './input-size.js';
import { WindowStats, type Clock } from './window-stats.js';

export interface ShapedItem {
  /** What is sent: the JPEG, or the original where the JPEG would not be smaller. */
  bytes: number;
  /** Pixels of what is sent (the cloud's compute follows these). */
  pixels: number;
  prepareMs: number;
}

/** A typical natural image at quality 75: about 1.2 bits per pixel. */
const BYTES_PER_PIXEL_AT_Q75 = 0.15;
/** libjpeg file size at a quality, relative to quality 75 (interpolated linearly between these). */
const RELATIVE_JPEG_SIZE: readonly [quality: number, relative: number][] = [
  [10, 0.3],
  [30, 0.5],
  [50, 0.68],
  [60, 0.8],
  [75, 1],
  [85, 1.3],
  [90, 1.6],
  [95, 2.3],
  [100, 4],
];

export function relativeJpegSize(quality: number): number {
  const q = Math.min(100, Math.max(10, quality));
  const upper = RELATIVE_JPEG_SIZE.findIndex(([level]) => level >= q);
  const [q1, r1] = RELATIVE_JPEG_SIZE[upper]!;
  if (q1 === q || upper === 0) return r1;
  const [q0, r0] = RELATIVE_JPEG_SIZE[upper - 1]!;
  return r0 + ((q - q0) / (q1 - q0)) * (r1 - r0);
}

/** Pixels after fitting the long side within maxSide, never enlarging. */
export function resizedPixels(width: number, height: number, maxSide: number): number {
  const scale = Math.min(1, maxSide / Math.max(width, height));
  return Math.round(width * scale) * Math.round(height * scale);
}

export class PayloadEstimator {
  /** Observed JPEG bytes over the modelled ones: how well this device's images compress. */
  private readonly contentFactor: WindowStats;
  private readonly prepareMsPerMegapixel: WindowStats;

  constructor(windowSize: number, clock?: Clock) {
    this.contentFactor = new WindowStats({ maxSamples: windowSize, clock });
    this.prepareMsPerMegapixel = new WindowStats({ maxSamples: windowSize, clock });
  }

  /** Learns from one image the offload client shaped; `inputPixels` is the original's size (NaN when unknown). */
  record(shaped: ShapedImage, inputPixels: number): void {
    if (shaped.outputPixels > 0) {
      this.contentFactor.add(shaped.jpegBytes / (shaped.outputPixels * BYTES_PER_PIXEL_AT_Q75 * relativeJpegSize(shaped.option.jpegQuality)));
    }
    if (inputPixels > 0) this.prepareMsPerMegapixel.add(shaped.prepareMs / (inputPixels / 1e6));
  }

  /** The item as it would be sent with `option`; undefined when the image's dimensions are unknown. */
  shape(item: ItemSize, option: ShapingOption): ShapedItem | undefined {
    if (!item.width || !item.height) return undefined;
    const pixels = resizedPixels(item.width, item.height, option.maxSide);
    const jpegBytes = pixels * BYTES_PER_PIXEL_AT_Q75 * relativeJpegSize(option.jpegQuality) * (this.contentFactor.mean() ?? 1);
    // Decoding, resizing and encoding follow the input's pixels; before the first shrink it is unknown and counted as 0.
    const prepareMs = (item.amount / 1e6) * (this.prepareMsPerMegapixel.mean() ?? 0);
    return jpegBytes < item.bytes ? { bytes: Math.round(jpegBytes), pixels, prepareMs } : { bytes: item.bytes, pixels: item.amount, prepareMs };
  }
}
