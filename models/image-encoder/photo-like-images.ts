/**
 * Images to calibrate and check the image encoders on: real photos the
 * project may redistribute (models/samples/photos, where each comes from is
 * in its README), split by a hash of the file name into a calibration part
 * and a held-out part; the project's own sample images (models/samples/ocr,
 * rendered text pages and photos of text); and photo-like scenes rendered
 * here with sharp from a seed: a sky-to-ground gradient, soft lit shapes,
 * a few lines of text, sensor-like noise and JPEG compression. The scenes
 * are not real photos; they were the only stand-in before the photo set
 * shipped and stay as a second, larger check.
 */
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import sharp from 'sharp';
import { packageRoot } from '../../shared/paths.js';
import { seededRandom } from '../../shared/seeded-random.js';

export interface NamedImage {
  name: string;
  bytes: Uint8Array;
}

const sampleDir = path.join(packageRoot, 'models', 'samples', 'ocr');
export const photoDir = path.join(packageRoot, 'models', 'samples', 'photos');
const imageExtensions = /\.(png|jpe?g|webp)$/i;

function imagesIn(dir: string, prefix: string): NamedImage[] {
  return readdirSync(dir)
    .filter((name) => imageExtensions.test(name))
    .sort()
    .map((name) => ({ name: `${prefix}/${name}`, bytes: new Uint8Array(readFileSync(path.join(dir, name))) }));
}

/** The project's sample images (models/samples/ocr), sorted by name. */
export function sampleImages(): NamedImage[] {
  return imagesIn(sampleDir, 'samples/ocr');
}

/**
 * Whether a photo is held out: the first byte of the SHA-256 of its file
 * name is below 128. Decided per name, so adding photos never moves one
 * already in the set from one part to the other (today 28 held out, 14 calibrate).
 */
export function isHeldOutPhoto(name: string): boolean {
  return createHash('sha256').update(path.basename(name)).digest()[0]! < 128;
}

/** The real photos of models/samples/photos, sorted by name: `held-out` or `calibration` part. */
export function realPhotos(part: 'held-out' | 'calibration'): NamedImage[] {
  return imagesIn(photoDir, 'samples/photos').filter((image) => isHeldOutPhoto(image.name) === (part === 'held-out'));
}

const words = ['harbour', 'market', 'open', 'sale', 'station', 'garden', 'coffee', 'exit', '出口', '咖啡', 'river', 'north'];

function colour(random: () => number, base: [number, number, number], spread: number): string {
  const channel = (c: number) => Math.max(0, Math.min(255, Math.round(c + (random() * 2 - 1) * spread)));
  return `rgb(${channel(base[0])},${channel(base[1])},${channel(base[2])})`;
}

/** One scene as SVG: gradient sky and ground, blurred lit shapes, a sign with text. */
function sceneSvg(random: () => number, width: number, height: number): string {
  const palettes: [number, number, number][] = [
    [120, 160, 210],
    [200, 150, 90],
    [90, 130, 80],
    [180, 180, 190],
    [60, 60, 90],
  ];
  const sky = palettes[Math.floor(random() * palettes.length)]!;
  const ground = palettes[Math.floor(random() * palettes.length)]!;
  const horizon = Math.round(height * (0.3 + random() * 0.4));
  const shapes: string[] = [];
  for (let i = 0, n = 4 + Math.floor(random() * 8); i < n; i++) {
    const x = Math.round(random() * width);
    const y = Math.round(random() * height);
    const size = Math.round(20 + random() * width * 0.3);
    const fill = colour(random, palettes[Math.floor(random() * palettes.length)]!, 70);
    const opacity = (0.4 + random() * 0.6).toFixed(2);
    const blur = random() < 0.5 ? ' filter="url(#soft)"' : '';
    if (random() < 0.5) shapes.push(`<ellipse cx="${x}" cy="${y}" rx="${size}" ry="${Math.round(size * (0.4 + random()))}" fill="${fill}" opacity="${opacity}"${blur}/>`);
    else shapes.push(`<rect x="${x}" y="${y}" width="${size}" height="${Math.round(size * (0.5 + random() * 1.5))}" fill="${fill}" opacity="${opacity}" transform="rotate(${Math.round(random() * 40 - 20)} ${x} ${y})"${blur}/>`);
  }
  const signX = Math.round(random() * width * 0.6);
  const signY = Math.round(random() * height * 0.7);
  const text = Array.from({ length: 1 + Math.floor(random() * 3) }, () => words[Math.floor(random() * words.length)]).join(' ');
  const fontSize = Math.round(18 + random() * 40);
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}">
  <defs>
    <linearGradient id="sky" x1="0" y1="0" x2="0" y2="1"><stop offset="0" stop-color="${colour(random, sky, 40)}"/><stop offset="1" stop-color="${colour(random, sky, 60)}"/></linearGradient>
    <linearGradient id="ground" x1="0" y1="0" x2="${random().toFixed(2)}" y2="1"><stop offset="0" stop-color="${colour(random, ground, 40)}"/><stop offset="1" stop-color="${colour(random, ground, 80)}"/></linearGradient>
    <radialGradient id="light" cx="${random().toFixed(2)}" cy="${(random() * 0.5).toFixed(2)}" r="0.8"><stop offset="0" stop-color="white" stop-opacity="0.5"/><stop offset="1" stop-color="black" stop-opacity="0.3"/></radialGradient>
    <filter id="soft"><feGaussianBlur stdDeviation="${(2 + random() * 8).toFixed(1)}"/></filter>
  </defs>
  <rect width="${width}" height="${horizon}" fill="url(#sky)"/>
  <rect y="${horizon}" width="${width}" height="${height - horizon}" fill="url(#ground)"/>
  ${shapes.join('\n  ')}
  <rect x="${signX}" y="${signY}" width="${Math.round(fontSize * text.length * 0.6 + 20)}" height="${fontSize + 20}" fill="${colour(random, [230, 230, 220], 25)}" opacity="0.9"/>
  <text x="${signX + 10}" y="${signY + fontSize + 4}" font-family="DejaVu Sans, Noto Sans CJK SC, sans-serif" font-size="${fontSize}" fill="${colour(random, [30, 30, 40], 30)}">${text}</text>
  <rect width="${width}" height="${height}" fill="url(#light)"/>
</svg>`;
}

/** `count` photo-like JPEGs (640 × 480 or 480 × 640) from `seed`: the same seed gives the same images. */
export async function photoLikeImages(count: number, seed: number): Promise<NamedImage[]> {
  const random = seededRandom(seed);
  const images: NamedImage[] = [];
  for (let i = 0; i < count; i++) {
    const [width, height] = random() < 0.75 ? [640, 480] : [480, 640];
    const svg = sceneSvg(random, width, height);
    const sigma = 4 + random() * 14;
    // From the seed, not sharp's own noise generator, so that a seed always gives the same bytes.
    const noise = Buffer.alloc(width * height * 3);
    for (let p = 0; p < noise.length; p++) noise[p] = Math.max(0, Math.min(255, Math.round(128 + (random() + random() + random() - 1.5) * 2 * sigma)));
    const jpeg = await sharp(Buffer.from(svg))
      .removeAlpha()
      .composite([{ input: noise, raw: { width, height, channels: 3 }, blend: 'soft-light' }])
      .jpeg({ quality: 70 + Math.floor(random() * 25) })
      .toBuffer();
    images.push({ name: `photo-like-${seed}-${String(i).padStart(3, '0')}.jpg`, bytes: new Uint8Array(jpeg) });
  }
  return images;
}

/** What the INT8 build calibrates on: the calibration part of the real photos, the project's samples and 64 photo-like scenes of seed 1. */
export async function calibrationImages(): Promise<NamedImage[]> {
  return [...realPhotos('calibration'), ...sampleImages(), ...(await photoLikeImages(64, 1))];
}

/**
 * What the INT8 build and the encoder measurements check agreement on,
 * nothing of it calibrated on: the held-out real photos and 64 photo-like
 * scenes of a seed calibration does not use (the project's samples
 * calibrate). Real photos come first and are named `samples/photos/…`, so a
 * report can give their figure on its own.
 */
export async function heldOutImages(): Promise<NamedImage[]> {
  return [...realPhotos('held-out'), ...(await photoLikeImages(PHOTO_LIKE_HELD_OUT, 2))];
}

/** The rendered scenes in heldOutImages(). */
export const PHOTO_LIKE_HELD_OUT = 64;

/** What heldOutImages() holds, in words, for reports. */
export const heldOutDescription = `the held-out real photos of models/samples/photos and ${PHOTO_LIKE_HELD_OUT} rendered photo-like scenes`;

/** Whether a named image is one of the real photos. */
export const isRealPhoto = (image: NamedImage) => image.name.startsWith('samples/photos/');
