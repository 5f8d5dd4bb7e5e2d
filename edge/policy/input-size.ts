/**
 * How big a task's input is, in the unit its model's cost follows: pixels
 * for images and video frames, seconds for audio, bytes for text. Read from
 * headers only (sharp's metadata, the WAV chunk sizes), so measuring costs
 * far less than the inference it helps place.
 */
import sharp from 'sharp';
import { maxImagePixels } from '../../shared/handlers/image-decode.js';
import { AUDIO_SAMPLE_RATE } from '../../shared/handlers/wav.js';
import type { Modality } from '../request.js';

export type SizeUnit = 'pixels' | 'audio-seconds' | 'text-bytes';

export interface ItemSize {
  /** In the task's unit; NaN when the header could not be read (the model will say why). */
  amount: number;
  bytes: number;
  /** Images only, as stored (EXIF rotation does not change the pixel count or the long side). */
  width?: number;
  height?: number;
}

export interface InputSize {
  unit: SizeUnit;
  items: ItemSize[];
}

const sizeUnitOf: Record<Modality, SizeUnit> = { text: 'text-bytes', audio: 'audio-seconds', image: 'pixels', video: 'pixels' };

const ascii = (bytes: Uint8Array, at: number) => String.fromCharCode(...bytes.subarray(at, at + 4));

/** Seconds of audio from the RIFF `fmt ` and `data` chunk headers; headerless input is 16 kHz mono PCM16. */
export function audioSeconds(bytes: Uint8Array): number {
  if (bytes.length < 12 || ascii(bytes, 0) !== 'RIFF' || ascii(bytes, 8) !== 'WAVE') return bytes.length / (AUDIO_SAMPLE_RATE * 2);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let bytesPerSecond = 0;
  for (let at = 12; at + 8 <= bytes.length; ) {
    const id = ascii(bytes, at);
    const size = view.getUint32(at + 4, true);
    if (id === 'fmt ' && at + 24 <= bytes.length) {
      const channels = view.getUint16(at + 10, true);
      const sampleRate = view.getUint32(at + 12, true);
      const bitsPerSample = view.getUint16(at + 22, true);
      bytesPerSecond = sampleRate * channels * Math.ceil(bitsPerSample / 8);
    } else if (id === 'data') {
      // A streamed WAV may declare a data size larger than what arrived.
      const dataBytes = Math.min(size, bytes.length - at - 8);
      return bytesPerSecond > 0 ? dataBytes / bytesPerSecond : Number.NaN;
    }
    at += 8 + size + (size % 2);
  }
  return Number.NaN;
}

async function imageSize(bytes: Uint8Array): Promise<ItemSize> {
  try {
    const { width, height } = await sharp(bytes, { limitInputPixels: maxImagePixels }).metadata();
    if (width && height) return { amount: width * height, bytes: bytes.length, width, height };
  } catch {
    // An undecodable image is refused by the model with a clear message; its size is simply unknown here.
  }
  return { amount: Number.NaN, bytes: bytes.length };
}

/** The size of each item of a task (one per video frame). */
export async function measureInputSize(modality: Modality, items: readonly Uint8Array[]): Promise<InputSize> {
  const unit = sizeUnitOf[modality];
  switch (unit) {
    case 'pixels':
      return { unit, items: await Promise.all(items.map(imageSize)) };
    case 'audio-seconds':
      return { unit, items: items.map((item) => ({ amount: audioSeconds(item), bytes: item.length })) };
    case 'text-bytes':
      return { unit, items: items.map((item) => ({ amount: item.length, bytes: item.length })) };
  }
}
