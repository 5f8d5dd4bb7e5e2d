/**
 * The benchmark's images: one photographed-document scene (the OCR fixtures
 * laid out on an uneven, grainy page, as a phone camera sees paper) rendered
 * at several resolutions, long side 640 / 1280 / 1920 px, 4:3, JPEG q90.
 * Everything is drawn from a seed, so the bytes are the same on every run
 * with the same sharp. The grain matters: a flat white page compresses to
 * almost nothing and would make offloading look free.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import sharp, { type OverlayOptions } from 'sharp';
import { packageRoot } from '../../shared/paths.js';
import { seededRandom } from '../../shared/seeded-random.js';

export interface BenchImage {
  /** e.g. `image-1280`. */
  name: string;
  longSide: number;
  width: number;
  height: number;
  bytes: Buffer;
}

export const benchImageSides = [640, 1280, 1920] as const;

const fixtureFiles = ['invoice.png', 'total-two-lines.png', 'welcome-zh.png', 'shipped-zh.jpg', 'edge-notice.webp', 'tilted.png', 'small-text.png'];
/** The scene is drawn at the largest size and scaled down for the others. */
const sceneWidth = 1920;
const sceneHeight = 1440;

/** A paper-coloured page lit unevenly, with per-pixel sensor grain (raw RGB). */
function pageBackground(random: () => number): Buffer {
  const pixels = Buffer.alloc(sceneWidth * sceneHeight * 3);
  const [lightX, lightY] = [random() * sceneWidth, random() * sceneHeight];
  const reach = Math.hypot(sceneWidth, sceneHeight);
  for (let y = 0; y < sceneHeight; y++) {
    for (let x = 0; x < sceneWidth; x++) {
      const shade = 236 - 40 * (Math.hypot(x - lightX, y - lightY) / reach);
      const grain = (random() + random() + random() - 1.5) * 14;
      const at = (y * sceneWidth + x) * 3;
      pixels[at] = Math.max(0, Math.min(255, shade + grain + 4));
      pixels[at + 1] = Math.max(0, Math.min(255, shade + grain));
      pixels[at + 2] = Math.max(0, Math.min(255, shade + grain - 10));
    }
  }
  return pixels;
}

/** The fixtures, each scaled up to a readable size on the page, in rows down the page. */
async function layout(random: () => number): Promise<OverlayOptions[]> {
  const overlays: OverlayOptions[] = [];
  let top = 60;
  for (const file of fixtureFiles) {
    const source = await readFile(path.join(packageRoot, 'models', 'samples', 'ocr', file));
    const scale = 1.1 + random() * 0.5;
    const meta = await sharp(source).metadata();
    const width = Math.min(sceneWidth - 120, Math.round(meta.width! * scale));
    const resized = await sharp(source).rotate().resize({ width }).flatten({ background: '#ecebe0' }).png().toBuffer();
    const { height } = await sharp(resized).metadata();
    if (top + height! > sceneHeight - 40) break;
    const left = 60 + Math.floor(random() * Math.max(1, sceneWidth - 120 - width));
    overlays.push({ input: resized, left, top, blend: 'multiply' });
    top += height! + 20 + Math.floor(random() * 30);
  }
  return overlays;
}

/** The scene at each of `sides` (long side, px), deterministic for a seed. */
export async function makeBenchImages(seed: number, sides: readonly number[] = benchImageSides): Promise<BenchImage[]> {
  const random = seededRandom(seed);
  const background = pageBackground(random);
  const scene = await sharp(background, { raw: { width: sceneWidth, height: sceneHeight, channels: 3 } })
    .composite(await layout(random))
    .png()
    .toBuffer();
  return Promise.all(
    sides.map(async (longSide) => {
      const width = longSide;
      const height = Math.round((longSide * sceneHeight) / sceneWidth);
      const bytes = await sharp(scene).resize({ width, height }).jpeg({ quality: 90 }).toBuffer();
      return { name: `image-${longSide}`, longSide, width, height, bytes };
    }),
  );
}
