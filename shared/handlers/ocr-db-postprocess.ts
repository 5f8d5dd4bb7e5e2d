import {
  clampQuad,
  distance,
  growQuad,
  insideConvex,
  minAreaRect,
  polygonArea,
  polygonPerimeter,
  shortSide,
  type Point,
  type Quad,
} from './ocr-box-geometry.js';

/**
 * DB (Differentiable Binarization) post-processing, following PaddleOCR's
 * DBPostProcess with score_mode 'fast': binarize the probability map, take
 * each connected text region's minimum-area rectangle, score it by the mean
 * probability inside, grow it by the unclip offset, and map it back to the
 * original image.
 */

export interface DbPostprocessOptions {
  /** Probability above which a map pixel is text. */
  binaryThreshold: number;
  /** Boxes whose mean probability is below this are dropped. */
  boxThreshold: number;
  /** The offset distance is area * unclipRatio / perimeter (DB paper, Vatti clipping). */
  unclipRatio: number;
  /** Regions whose rectangle's short side (map pixels) is below this are dropped. */
  minSize: number;
  maxCandidates: number;
}

export const defaultDbOptions: DbPostprocessOptions = {
  binaryThreshold: 0.3,
  boxThreshold: 0.6,
  unclipRatio: 1.5,
  minSize: 3,
  maxCandidates: 1000,
};

export interface ProbabilityMap {
  data: Float32Array;
  width: number;
  height: number;
}

export interface DetectedBox {
  box: Quad;
  /** Mean text probability inside the box before unclipping. */
  score: number;
}

export function dbPostprocess(
  map: ProbabilityMap,
  image: { width: number; height: number },
  options: DbPostprocessOptions = defaultDbOptions,
): DetectedBox[] {
  const detected: DetectedBox[] = [];
  for (const region of textRegions(map, options.binaryThreshold, options.maxCandidates)) {
    const rect = minAreaRect(region);
    if (rect.shortSide < options.minSize) continue;
    const score = meanInside(map, rect.box);
    if (score < options.boxThreshold) continue;
    const grown = unclipRectangle(rect.box, options.unclipRatio);
    if (grown.shortSide < options.minSize + 2) continue;
    const box = scaleToImage(grown.box, map, image);
    if (distance(box[0], box[1]) <= 3 || distance(box[0], box[3]) <= 3) continue;
    detected.push({ box, score });
  }
  return detected;
}

/**
 * 8-connected regions of pixels above the threshold, each given as the
 * leftmost and rightmost pixel centre of every row: enough for its convex hull.
 */
export function textRegions(map: ProbabilityMap, threshold: number, maxRegions = Infinity): Point[][] {
  const { data, width, height } = map;
  const seen = new Uint8Array(width * height);
  const stack = new Int32Array(width * height);
  const regions: Point[][] = [];
  for (let start = 0; start < data.length && regions.length < maxRegions; start++) {
    if (seen[start] || !(data[start]! > threshold)) continue;
    const rowLeft = new Map<number, number>();
    const rowRight = new Map<number, number>();
    let top = 0;
    seen[start] = 1;
    stack[top++] = start;
    while (top > 0) {
      const index = stack[--top]!;
      const x = index % width;
      const y = (index - x) / width;
      if (!(rowLeft.get(y)! <= x)) rowLeft.set(y, x);
      if (!(rowRight.get(y)! >= x)) rowRight.set(y, x);
      for (let dy = -1; dy <= 1; dy++) {
        const ny = y + dy;
        if (ny < 0 || ny >= height) continue;
        for (let dx = -1; dx <= 1; dx++) {
          const nx = x + dx;
          if (nx < 0 || nx >= width) continue;
          const next = ny * width + nx;
          if (!seen[next] && data[next]! > threshold) {
            seen[next] = 1;
            stack[top++] = next;
          }
        }
      }
    }
    const points: Point[] = [];
    for (const [y, left] of rowLeft) points.push([left, y], [rowRight.get(y)!, y]);
    regions.push(points);
  }
  return regions;
}

/** Mean probability over the map pixels whose centres lie inside the box. */
export function meanInside(map: ProbabilityMap, box: Quad): number {
  const xs = box.map((p) => p[0]);
  const ys = box.map((p) => p[1]);
  const x0 = Math.max(0, Math.floor(Math.min(...xs)));
  const x1 = Math.min(map.width - 1, Math.ceil(Math.max(...xs)));
  const y0 = Math.max(0, Math.floor(Math.min(...ys)));
  const y1 = Math.min(map.height - 1, Math.ceil(Math.max(...ys)));
  let sum = 0;
  let count = 0;
  for (let y = y0; y <= y1; y++) {
    for (let x = x0; x <= x1; x++) {
      if (!insideConvex(box, x, y)) continue;
      sum += map.data[y * map.width + x]!;
      count++;
    }
  }
  return count > 0 ? sum / count : 0;
}

/**
 * Offsets a rectangle outward by area * ratio / perimeter. PaddleOCR offsets
 * with pyclipper (round joins) and takes the min-area rectangle again, which
 * for a rectangle is the same as moving every side out by that distance.
 */
export function unclipRectangle(box: Quad, ratio: number): { box: Quad; shortSide: number } {
  const grown = growQuad(box, (polygonArea(box) * ratio) / polygonPerimeter(box));
  return { box: grown, shortSide: shortSide(grown) };
}

function scaleToImage(box: Quad, map: ProbabilityMap, image: { width: number; height: number }): Quad {
  const sx = image.width / map.width;
  const sy = image.height / map.height;
  return clampQuad(box.map(([x, y]) => [x * sx, y * sy]) as Quad, image.width, image.height);
}
