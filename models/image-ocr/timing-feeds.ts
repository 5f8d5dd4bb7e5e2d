/**
 * Real inputs to time the OCR graphs on, made by the handler's own
 * pre-processing from the evaluation set's line images, pasted 16 to a
 * 992 × 1664 page, one under another (the detector sees it at its 960 px
 * limit, as 576 × 960):
 *   ocr-det, batch N: the detection inputs of N such pages, stacked;
 *   ocr-rec, batch N: N line crops the handler cut from the first page,
 *   padded to the widest, as one recognition batch is.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import sharp from 'sharp';
import { decodeImage } from '../../shared/handlers/image-decode.js';
import { detectionInput } from '../../shared/handlers/ocr-tensors.js';
import type { LoadedModel } from '../../shared/loaded-model.js';
import type { Tensor } from '../../shared/tensor.js';
import { concatFloat32, padLastDim, recordFeeds, type Feeds } from '../toolchain/recorded-feeds.js';
import { readExpectedTexts } from '../toolchain/evaluate-image-ocr.js';

const linesPerPage = 16;
/** Room for the widest (961 px) and tallest (99 px) evaluation line; every page has this size, so detection inputs stack. */
const pageWidth = 992;
const rowHeight = 104;

async function page(dataDir: string, images: readonly string[]): Promise<Uint8Array> {
  const composites = [];
  for (const [i, name] of images.entries()) {
    const input = readFileSync(path.join(dataDir, name));
    const { width = 0, height = 0 } = await sharp(input).metadata();
    if (width > pageWidth - 16 || height > rowHeight) throw new Error(`OCR timing feeds: ${name} is ${width} × ${height}, larger than a page row (${pageWidth - 16} × ${rowHeight})`);
    composites.push({ input, left: 16, top: i * rowHeight + Math.floor((rowHeight - height) / 2) });
  }
  const png = await sharp({ create: { width: pageWidth, height: rowHeight * linesPerPage, channels: 3, background: '#ffffff' } }).composite(composites).png().toBuffer();
  return new Uint8Array(png);
}

function firstRows(tensor: Tensor, rows: number): Tensor {
  const rowSize = (tensor.data as Float32Array).length / tensor.dims[0]!;
  return { type: 'float32', dims: [rows, ...tensor.dims.slice(1)], data: (tensor.data as Float32Array).slice(0, rows * rowSize) };
}

/** Feeds for each graph at each batch size (at most 16), from the line images in `dataDir` (with its expected.json). */
export async function ocrTimingFeeds(fp32: LoadedModel, batches: readonly number[], dataDir: string): Promise<Record<'ocr-det' | 'ocr-rec', Map<number, Feeds>>> {
  const largest = Math.max(...batches);
  if (largest > linesPerPage) throw new Error(`OCR timing feeds: batch ${largest} is larger than the ${linesPerPage} lines a page holds`);
  const names = Object.keys(readExpectedTexts(dataDir)).sort();
  const pages = await Promise.all(
    Array.from({ length: largest }, (_, p) => page(dataDir, Array.from({ length: linesPerPage }, (_, i) => names[(p * linesPerPage + i) % names.length]!))),
  );
  const detInputs = await Promise.all(pages.map(async (png) => (await detectionInput(await decodeImage(png))).tensor));
  const recBatches = (await recordFeeds(fp32, pages[0]!))['ocr-rec'] ?? [];
  const width = Math.max(...recBatches.map((feeds) => feeds.x!.dims[3]!));
  const lines = recBatches.length > 0 ? concatFloat32(recBatches.map((feeds) => padLastDim(feeds.x!, width)), 0) : undefined;
  if (!lines || lines.dims[0]! < largest) {
    throw new Error(`OCR timing feeds: the detector found ${lines?.dims[0] ?? 0} lines on a page of ${linesPerPage} — is the ocr-det graph of ${fp32.variant} broken?`);
  }
  return {
    'ocr-det': new Map(batches.map((b) => [b, { x: concatFloat32(detInputs.slice(0, b), 0) }])),
    'ocr-rec': new Map(batches.map((b) => [b, { x: firstRows(lines, b) }])),
  };
}
