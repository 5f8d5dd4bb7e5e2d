/**
 * Reducto-style frame filtering on the device: a frame whose small grey
 * thumbnail barely differs from the last kept frame's carries nothing the
 * encoder has not seen, so it is dropped before it costs compute or uplink.
 * The feature is the mean absolute difference of 16×16 block averages (0–1
 * of full scale): cheap (a few thousand samples per frame, whatever its
 * size) and blind to sensor noise, which averages out within a block.
 */
import type { RgbImage } from '../../shared/handlers/image-decode.js';

/** Thumbnail side, in blocks. */
const side = 16;
/** Samples per block side: the block average is taken over at most this many × this many pixels. */
const samplesPerBlock = 6;

/** Mean luma of each of side × side blocks, in 0–255. */
export function greyThumbnail(frame: RgbImage): Float32Array {
  const thumb = new Float32Array(side * side);
  const { width, height, data } = frame;
  for (let by = 0; by < side; by++) {
    const y0 = Math.floor((by * height) / side);
    const y1 = Math.max(y0 + 1, Math.floor(((by + 1) * height) / side));
    const stepY = Math.max(1, Math.floor((y1 - y0) / samplesPerBlock));
    for (let bx = 0; bx < side; bx++) {
      const x0 = Math.floor((bx * width) / side);
      const x1 = Math.max(x0 + 1, Math.floor(((bx + 1) * width) / side));
      const stepX = Math.max(1, Math.floor((x1 - x0) / samplesPerBlock));
      let sum = 0;
      let n = 0;
      for (let y = y0; y < y1; y += stepY) {
        for (let x = x0; x < x1; x += stepX) {
          const at = (y * width + x) * 3;
          // Rec. 601 luma, in integer weights.
          sum += (data[at]! * 299 + data[at + 1]! * 587 + data[at + 2]! * 114) / 1000;
          n++;
        }
      }
      thumb[by * side + bx] = sum / n;
    }
  }
  return thumb;
}

/** Mean absolute difference of two thumbnails, 0–1. */
export function thumbnailDifference(a: Float32Array, b: Float32Array): number {
  let sum = 0;
  for (let i = 0; i < a.length; i++) sum += Math.abs(a[i]! - b[i]!);
  return sum / a.length / 255;
}

export class FrameFilter {
  kept = 0;
  dropped = 0;
  private last: Float32Array | undefined;

  /** `threshold` 0 keeps every frame. */
  constructor(private readonly threshold: number) {}

  /** Whether to keep the frame: the first, a forced one, or one that differs from the last kept by at least the threshold. */
  keep(frame: RgbImage, force = false): boolean {
    if (this.threshold === 0) {
      this.kept++;
      return true;
    }
    const thumb = greyThumbnail(frame);
    const keep = force || !this.last || thumbnailDifference(thumb, this.last) >= this.threshold;
    if (keep) {
      this.last = thumb;
      this.kept++;
    } else {
      this.dropped++;
    }
    return keep;
  }
}
