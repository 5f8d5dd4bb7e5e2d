import sharp from 'sharp';
import { float32, type Tensor } from '../tensor.js';
import type { RgbImage } from './image-decode.js';
import { distance, type Quad } from './ocr-box-geometry.js';

/**
 * Input tensors of the PaddleOCR v4 graphs, built as PaddleOCR's predict_det /
 * predict_rec build them. PaddleOCR reads images with OpenCV, so both graphs
 * were trained on BGR channel order; the ImageNet mean/std below are applied to
 * B, G, R in that (un-swapped) order, as PaddleOCR's NormalizeImage does.
 */

/** PaddleOCR's det_limit_side_len with det_limit_type 'max'. */
export const detMaxSide = 960;
const detMean = [0.485, 0.456, 0.406];
const detStd = [0.229, 0.224, 0.225];

export const recHeight = 48;
/** PaddleOCR pads every recognition batch to at least 320 wide (its rec_image_shape). */
export const recMinWidth = 320;
/** Longer lines are squeezed to this width rather than growing the tensor without bound. */
export const recMaxWidth = 320 * 8;
/** A crop this much taller than wide is vertical text: PaddleOCR turns it 90° before recognition. */
const tallRatio = 1.5;

export interface DetectionInput {
  tensor: Tensor;
  width: number;
  height: number;
}

/** Long side ≤ 960, both sides rounded to multiples of 32 (the DB backbone downsamples 32×). */
export function detectionSize(width: number, height: number): { width: number; height: number } {
  const ratio = Math.min(1, detMaxSide / Math.max(width, height));
  const round32 = (v: number) => Math.max(32, Math.round((v * ratio) / 32) * 32);
  return { width: round32(width), height: round32(height) };
}

export async function detectionInput(image: RgbImage): Promise<DetectionInput> {
  const { width, height } = detectionSize(image.width, image.height);
  const resized = await sharp(image.data, { raw: { width: image.width, height: image.height, channels: 3 } })
    .resize(width, height, { fit: 'fill' })
    .raw()
    .toBuffer();
  const plane = width * height;
  const data = new Float32Array(3 * plane);
  for (let i = 0; i < plane; i++) {
    for (let c = 0; c < 3; c++) {
      // Channel c of the tensor is B, G, R for c = 0, 1, 2.
      data[c * plane + i] = (resized[i * 3 + 2 - c]! / 255 - detMean[c]!) / detStd[c]!;
    }
  }
  return { tensor: float32([1, 3, height, width], data), width, height };
}

/** The crop of one detected box, oriented so its text runs left to right. */
export interface LineCrop {
  /** Corners to sample: the crop's top-left, top-right, bottom-right, bottom-left. */
  quad: Quad;
  width: number;
  height: number;
}

/** As PaddleOCR's get_rotate_crop_image: crop size from the box's longest sides, tall crops turned 90° anticlockwise. */
export function lineCrop(box: Quad): LineCrop {
  const [p0, p1, p2, p3] = box;
  const width = Math.max(1, Math.round(Math.max(distance(p0, p1), distance(p2, p3))));
  const height = Math.max(1, Math.round(Math.max(distance(p0, p3), distance(p1, p2))));
  if (height / width >= tallRatio) return { quad: [p1, p2, p3, p0], width: height, height: width };
  return { quad: box, width, height };
}

/** Width a crop gets at the recognition height, keeping its aspect ratio. */
export function recognitionWidth(crop: LineCrop): number {
  return Math.min(recMaxWidth, Math.max(1, Math.ceil((recHeight * crop.width) / crop.height)));
}

/**
 * One [N, 3, 48, W] batch: each crop resampled to height 48 and its own width,
 * normalised to (x/255 - 0.5)/0.5 in BGR order, right-padded with zeros (the
 * normalised mid-grey PaddleOCR pads with) to the widest crop, at least 320.
 */
export function recognitionBatch(image: RgbImage, crops: readonly LineCrop[]): Tensor {
  const widths = crops.map(recognitionWidth);
  const batchWidth = Math.max(recMinWidth, ...widths);
  const plane = recHeight * batchWidth;
  const data = new Float32Array(crops.length * 3 * plane);
  crops.forEach((crop, n) => sampleCrop(image, crop, widths[n]!, data, n * 3 * plane, batchWidth));
  return float32([crops.length, 3, recHeight, batchWidth], data);
}

/**
 * Resamples the crop's quad to outWidth × 48 with bilinear taps, averaging
 * several taps per output pixel when shrinking so thin strokes do not alias.
 */
function sampleCrop(image: RgbImage, crop: LineCrop, outWidth: number, out: Float32Array, offset: number, rowStride: number): void {
  const [p0, p1, p2, p3] = crop.quad;
  const tapsX = Math.max(1, Math.ceil(crop.width / outWidth));
  const tapsY = Math.max(1, Math.ceil(crop.height / recHeight));
  const taps = tapsX * tapsY;
  const plane = recHeight * rowStride;
  const rgb = [0, 0, 0];
  for (let oy = 0; oy < recHeight; oy++) {
    for (let ox = 0; ox < outWidth; ox++) {
      rgb[0] = rgb[1] = rgb[2] = 0;
      for (let ty = 0; ty < tapsY; ty++) {
        const v = (oy + (ty + 0.5) / tapsY) / recHeight;
        for (let tx = 0; tx < tapsX; tx++) {
          const u = (ox + (tx + 0.5) / tapsX) / outWidth;
          // Bilinear map of the unit square onto the quad (exact for the rectangles DB produces).
          const x = (1 - u) * (1 - v) * p0[0] + u * (1 - v) * p1[0] + u * v * p2[0] + (1 - u) * v * p3[0];
          const y = (1 - u) * (1 - v) * p0[1] + u * (1 - v) * p1[1] + u * v * p2[1] + (1 - u) * v * p3[1];
          addBilinear(image, x, y, rgb);
        }
      }
      const at = offset + oy * rowStride + ox;
      for (let c = 0; c < 3; c++) out[at + c * plane] = (rgb[2 - c]! / taps / 255 - 0.5) / 0.5;
    }
  }
}

/** Adds the bilinearly interpolated RGB at (x, y) (pixel-centre coordinates, edges replicated) to `sum`. */
function addBilinear(image: RgbImage, x: number, y: number, sum: number[]): void {
  const { data, width, height } = image;
  const cx = Math.min(Math.max(x, 0), width - 1);
  const cy = Math.min(Math.max(y, 0), height - 1);
  const x0 = Math.floor(cx);
  const y0 = Math.floor(cy);
  const x1 = Math.min(x0 + 1, width - 1);
  const y1 = Math.min(y0 + 1, height - 1);
  const fx = cx - x0;
  const fy = cy - y0;
  for (let c = 0; c < 3; c++) {
    const top = data[(y0 * width + x0) * 3 + c]! * (1 - fx) + data[(y0 * width + x1) * 3 + c]! * fx;
    const bottom = data[(y1 * width + x0) * 3 + c]! * (1 - fx) + data[(y1 * width + x1) * 3 + c]! * fx;
    sum[c] = sum[c]! + top * (1 - fy) + bottom * fy;
  }
}
