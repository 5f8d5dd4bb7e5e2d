/**
 * The older video input: a list of encoded frames (JPEG, also PNG or WebP),
 * decoded lazily one at a time with sharp to the same upright RGB frames at
 * the same size rule as ffmpeg's output, so nothing after decode can tell the
 * two inputs apart.
 */
import sharp from 'sharp';
import { hexPrefix, InferError } from '../../shared/errors.js';
import { maxImagePixels, sniffImageFormat, type RgbImage } from '../../shared/handlers/image-decode.js';

/** The size ffmpeg's scale expression gives (ffmpeg-frames.ts): long side ≤ maxSide, aspect kept, even, at least 2, never upscaled. */
export function fitSize(width: number, height: number, maxSide: number): { width: number; height: number } {
  const factor = Math.min(1, maxSide / Math.max(width, height));
  const even = (side: number) => Math.max(2, Math.trunc((side * factor) / 2) * 2);
  return { width: even(width), height: even(height) };
}

/** Frame `index` of the list as RGB, or INVALID_ARGUMENT naming the frame. */
export async function decodeListedFrame(bytes: Uint8Array, index: number, maxSide: number): Promise<RgbImage> {
  const label = `video frame ${index}`;
  if (!sniffImageFormat(bytes)) {
    throw new InferError('INVALID_ARGUMENT', `${label}: ${bytes.length} bytes starting ${hexPrefix(bytes)} are not a JPEG/PNG/WebP image — send each frame as an encoded image`);
  }
  // failOn 'warning' makes a truncated frame an error instead of a grey-filled image.
  const options = { failOn: 'warning', limitInputPixels: maxImagePixels } as const;
  try {
    const { width, height, orientation } = await sharp(bytes, options).metadata();
    if (!width || !height) throw new Error('no image dimensions in the header');
    const upright = orientation !== undefined && orientation >= 5 ? { width: height, height: width } : { width, height };
    const size = fitSize(upright.width, upright.height, maxSide);
    const { data, info } = await sharp(bytes, options)
      .rotate()
      .resize(size.width, size.height, { fit: 'fill' })
      .flatten({ background: '#ffffff' })
      .toColourspace('srgb')
      .removeAlpha()
      .raw()
      .toBuffer({ resolveWithObject: true });
    return { data: new Uint8Array(data.buffer, data.byteOffset, data.byteLength), width: info.width, height: info.height };
  } catch (err) {
    throw new InferError(
      'INVALID_ARGUMENT',
      `${label} does not decode (${err instanceof Error ? err.message.trim() : String(err)}) — the image is truncated or corrupt; send complete frames`,
      { cause: err },
    );
  }
}
