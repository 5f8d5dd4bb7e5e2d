/** Plane geometry for OCR boxes: convex hull, minimum-area rectangle, reading order. */

export type Point = [x: number, y: number];
/** Corners in reading order: top-left, top-right, bottom-right, bottom-left. */
export type Quad = [Point, Point, Point, Point];

const cross = (o: Point, a: Point, b: Point) => (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0]);

/** Andrew's monotone chain; returns the hull counter-clockwise (y down: clockwise on screen) without repeats. */
export function convexHull(points: readonly Point[]): Point[] {
  const sorted = [...points].sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  if (sorted.length < 3) return sorted;
  const lower: Point[] = [];
  for (const p of sorted) {
    while (lower.length >= 2 && cross(lower[lower.length - 2]!, lower[lower.length - 1]!, p) <= 0) lower.pop();
    lower.push(p);
  }
  const upper: Point[] = [];
  for (let i = sorted.length - 1; i >= 0; i--) {
    const p = sorted[i]!;
    while (upper.length >= 2 && cross(upper[upper.length - 2]!, upper[upper.length - 1]!, p) <= 0) upper.pop();
    upper.push(p);
  }
  return lower.slice(0, -1).concat(upper.slice(0, -1));
}

export interface Rect {
  box: Quad;
  /** Length of the shorter side. */
  shortSide: number;
}

/**
 * The minimum-area enclosing rectangle of a point set (rotating calipers over
 * the hull edges, as cv2.minAreaRect), with corners ordered as PaddleOCR's
 * get_mini_boxes orders them.
 */
export function minAreaRect(points: readonly Point[]): Rect {
  const hull = convexHull(points);
  if (hull.length === 0) throw new Error('minAreaRect needs at least one point');
  let best = { area: Infinity, ux: 1, uy: 0, minU: 0, maxU: 0, minV: 0, maxV: 0 };
  for (let i = 0; i < hull.length; i++) {
    const a = hull[i]!;
    const b = hull[(i + 1) % hull.length]!;
    const length = Math.hypot(b[0] - a[0], b[1] - a[1]);
    const ux = length > 0 ? (b[0] - a[0]) / length : 1;
    const uy = length > 0 ? (b[1] - a[1]) / length : 0;
    let minU = Infinity, maxU = -Infinity, minV = Infinity, maxV = -Infinity;
    for (const [x, y] of hull) {
      const u = x * ux + y * uy;
      const v = -x * uy + y * ux;
      minU = Math.min(minU, u);
      maxU = Math.max(maxU, u);
      minV = Math.min(minV, v);
      maxV = Math.max(maxV, v);
    }
    const area = (maxU - minU) * (maxV - minV);
    if (area < best.area) best = { area, ux, uy, minU, maxU, minV, maxV };
  }
  const { ux, uy, minU, maxU, minV, maxV } = best;
  const corner = (u: number, v: number): Point => [u * ux - v * uy, u * uy + v * ux];
  const corners = [corner(minU, minV), corner(maxU, minV), corner(maxU, maxV), corner(minU, maxV)];
  return { box: orderCorners(corners), shortSide: Math.min(maxU - minU, maxV - minV) };
}

/** Left pair by x, top of each pair by y: tl, tr, br, bl (PaddleOCR's get_mini_boxes order). */
export function orderCorners(corners: readonly Point[]): Quad {
  const byX = [...corners].sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  const [l1, l2, r1, r2] = byX as [Point, Point, Point, Point];
  const [tl, bl] = l1[1] <= l2[1] ? [l1, l2] : [l2, l1];
  const [tr, br] = r1[1] <= r2[1] ? [r1, r2] : [r2, r1];
  return [tl, tr, br, bl];
}

export function polygonArea(polygon: readonly Point[]): number {
  let twice = 0;
  for (let i = 0; i < polygon.length; i++) {
    const [x1, y1] = polygon[i]!;
    const [x2, y2] = polygon[(i + 1) % polygon.length]!;
    twice += x1 * y2 - x2 * y1;
  }
  return Math.abs(twice) / 2;
}

export function polygonPerimeter(polygon: readonly Point[]): number {
  let length = 0;
  for (let i = 0; i < polygon.length; i++) {
    const [x1, y1] = polygon[i]!;
    const [x2, y2] = polygon[(i + 1) % polygon.length]!;
    length += Math.hypot(x2 - x1, y2 - y1);
  }
  return length;
}

export function distance(a: Point, b: Point): number {
  return Math.hypot(b[0] - a[0], b[1] - a[1]);
}

/** The shorter of a rectangle's two side lengths. */
export function shortSide(box: Quad): number {
  return Math.min(distance(box[0], box[1]), distance(box[0], box[3]));
}

/** Moves every side of a rectangle outward by `offset` along its own normal. */
export function growQuad(box: Quad, offset: number): Quad {
  const [tl, tr, br, bl] = box;
  const across = distance(tl, tr) || 1;
  const down = distance(tl, bl) || 1;
  const u: Point = [(tr[0] - tl[0]) / across, (tr[1] - tl[1]) / across];
  const v: Point = [(bl[0] - tl[0]) / down, (bl[1] - tl[1]) / down];
  const shift = (p: Point, su: number, sv: number): Point => [
    p[0] + offset * (su * u[0] + sv * v[0]),
    p[1] + offset * (su * u[1] + sv * v[1]),
  ];
  return [shift(tl, -1, -1), shift(tr, 1, -1), shift(br, 1, 1), shift(bl, -1, 1)];
}

/** Rounds corners to whole pixels and clamps them into a width × height image. */
export function clampQuad(box: Quad, width: number, height: number): Quad {
  const clamp = (v: number, max: number) => Math.min(Math.max(Math.round(v), 0), max);
  return box.map(([x, y]) => [clamp(x, width - 1), clamp(y, height - 1)]) as Quad;
}

/** Whether (x, y) lies inside or on a convex polygon given in either winding. */
export function insideConvex(polygon: readonly Point[], x: number, y: number): boolean {
  let sign = 0;
  for (let i = 0; i < polygon.length; i++) {
    const c = cross(polygon[i]!, polygon[(i + 1) % polygon.length]!, [x, y]);
    if (Math.abs(c) < 1e-9) continue;
    if (sign === 0) sign = Math.sign(c);
    else if (Math.sign(c) !== sign) return false;
  }
  return true;
}

/**
 * Reading order: lines top to bottom, boxes within a line left to right. A box
 * joins the current line when its vertical centre lies within the line's first box.
 */
export function readingOrder<T extends { box: Quad }>(items: readonly T[]): T[] {
  const top = (q: Quad) => Math.min(q[0][1], q[1][1]);
  const bottom = (q: Quad) => Math.max(q[2][1], q[3][1]);
  const left = (q: Quad) => Math.min(q[0][0], q[3][0]);
  const byTop = [...items].sort((a, b) => top(a.box) - top(b.box) || left(a.box) - left(b.box));
  const ordered: T[] = [];
  let line: T[] = [];
  for (const item of byTop) {
    const first = line[0];
    const centre = (top(item.box) + bottom(item.box)) / 2;
    if (first && centre > bottom(first.box)) {
      ordered.push(...line.sort((a, b) => left(a.box) - left(b.box)));
      line = [];
    }
    line.push(item);
  }
  ordered.push(...line.sort((a, b) => left(a.box) - left(b.box)));
  return ordered;
}
