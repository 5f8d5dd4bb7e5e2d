import sharp from 'sharp';
import { hexPrefix, InferError } from '../errors.js';
import type { ItemSize } from './handler.js';

/** An upright, opaque 8-bit RGB image (rows top to bottom, 3 bytes per pixel). */
export interface RgbImage {
  data: Uint8Array;
  width: number;
  height: number;
}

export type ImageFormat = 'jpeg' | 'png' | 'webp';

/** Larger images cost more memory than an edge device should spend on one request. */
export const maxImagePixels = 40_000_000;

const startsWith = (bytes: Uint8Array, prefix: readonly number[], at = 0) => prefix.every((b, i) => bytes[at + i] === b);

/** The format named by the file signature, or undefined for anything else. */
export function sniffImageFormat(bytes: Uint8Array): ImageFormat | undefined {
  if (startsWith(bytes, [0xff, 0xd8, 0xff])) return 'jpeg';
  if (startsWith(bytes, [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a])) return 'png';
  if (startsWith(bytes, [0x52, 0x49, 0x46, 0x46]) && startsWith(bytes, [0x57, 0x45, 0x42, 0x50], 8)) return 'webp';
  return undefined;
}

/** The format of encoded image bytes, or INVALID_ARGUMENT naming `label` when they are empty or another kind of file. */
function imageFormatOf(bytes: Uint8Array, label: string): ImageFormat {
  if (bytes.length === 0) throw new InferError('INVALID_ARGUMENT', `${label} is empty — send the bytes of a JPEG, PNG or WebP file`);
  const format = sniffImageFormat(bytes);
  if (!format) {
    throw new InferError(
      'INVALID_ARGUMENT',
      `${label}: ${bytes.length} bytes starting ${hexPrefix(bytes)} are not a JPEG/PNG/WebP image — send the file bytes, not a path or another format`,
    );
  }
  return format;
}

/** The edge's check of an image handler's input: bytes that start like a JPEG, PNG or WebP file (decoding comes later). */
export function checkImageInput(value: unknown, label: string): Uint8Array {
  if (!(value instanceof Uint8Array)) {
    throw new InferError('INVALID_ARGUMENT', `${label} must be binary image bytes, got ${typeof value} — in JSON send the file base64-encoded`);
  }
  imageFormatOf(value, label);
  return value;
}

/**
 * How big an image is, from its header: pixels as stored (EXIF rotation
 * changes neither the pixel count nor the long side); NaN when the header
 * does not read, since decodeImage will refuse the image with the reason.
 */
export async function measureImage(bytes: Uint8Array): Promise<ItemSize> {
  try {
    const { width, height } = await sharp(bytes, { limitInputPixels: maxImagePixels }).metadata();
    if (width && height) return { amount: width * height, bytes: bytes.length, width, height };
  } catch {
    // Unreadable: the size is unknown, and the run says why.
  }
  return { amount: Number.NaN, bytes: bytes.length };
}

/**
 * Decodes JPEG/PNG/WebP bytes the way a viewer shows them: EXIF orientation
 * applied, transparency flattened onto white, converted to sRGB. Errors name
 * the input by `label` (e.g. 'video frame 3').
 */
export async function decodeImage(input: Uint8Array, label = 'image input'): Promise<RgbImage> {
  const format = imageFormatOf(input, label);
  const corrupt = (err: unknown) =>
    new InferError(
      'INVALID_ARGUMENT',
      `${label}: ${input.length} bytes starting ${hexPrefix(input)} look like ${format.toUpperCase()} but do not decode ` +
        `(${err instanceof Error ? err.message.trim() : String(err)}) — the file is truncated or corrupt; send the complete file`,
      { cause: err },
    );
  // failOn 'warning' makes truncated data an error instead of a grey-filled image.
  const options = { failOn: 'warning', limitInputPixels: maxImagePixels } as const;
  let width: number | undefined;
  let height: number | undefined;
  try {
    ({ width, height } = await sharp(input, { ...options, limitInputPixels: false }).metadata());
  } catch (err) {
    throw corrupt(err);
  }
  if (!width || !height) throw corrupt(new Error('no image dimensions in the header'));
  if (width * height > maxImagePixels) {
    throw new InferError(
      'INVALID_ARGUMENT',
      `${label}: ${width}×${height} pixels (${((width * height) / 1e6).toFixed(1)} MP) is over the ` +
        `${maxImagePixels / 1e6} MP limit — downscale the image before sending it`,
    );
  }
  try {
    const { data, info } = await sharp(input, options)
      .rotate()
      .flatten({ background: '#ffffff' })
      .toColourspace('srgb')
      .removeAlpha()
      .raw()
      .toBuffer({ resolveWithObject: true });
    if (info.channels !== 3) throw new Error(`decoded to ${info.channels} channels, expected 3`);
    return { data: new Uint8Array(data.buffer, data.byteOffset, data.byteLength), width: info.width, height: info.height };
  } catch (err) {
    throw corrupt(err);
  }
}
