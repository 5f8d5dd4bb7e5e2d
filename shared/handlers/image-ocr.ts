import sharp from 'sharp';
import { bytesTensor, float32, type Tensor } from '../tensor.js';
import { registerHandler, type HandlerContext, type ModelHandler } from './handler.js';
import { checkImageInput, decodeImage, measureImage, type RgbImage } from './image-decode.js';
import { clampQuad, growQuad, readingOrder, shortSide, type Quad } from './ocr-box-geometry.js';
import { ctcGreedyDecode, loadDictionary, type DecodedText } from './ocr-ctc-decode.js';
import { dbPostprocess } from './ocr-db-postprocess.js';
import { detectionInput, detMaxSide, lineCrop, recognitionBatch, recognitionWidth, type LineCrop } from './ocr-tensors.js';

/**
 * PaddleOCR v4 (ch_PP-OCRv4, Chinese + English): DB text detection, then CTC
 * recognition of each detected line. Pipeline and thresholds follow
 * PaddleOCR's tools/infer/predict_system.py defaults (no angle classifier).
 */

const detOutput = 'sigmoid_0.tmp_0';
const recOutput = 'softmax_11.tmp_0';
/** PaddleOCR's rec_batch_num. */
const recBatchSize = 6;
/**
 * Each line is read from, and reported as, its DB box grown by this fraction
 * of the box's short side. DB boxes (unclip ratio 1.5) hug the glyphs and clip
 * their edges; with so little context the v4 recogniser also drops the spaces
 * between words (PaddleOCR issues #8185, #11386: maintainers advise larger boxes).
 */
const lineMarginRatio = 0.2;
/** PaddleOCR's drop_score: lines recognised with less confidence are noise, not text. */
const minLineScore = 0.5;

export interface OcrLine {
  text: string;
  score: number;
  /** Top-left, top-right, bottom-right, bottom-left, in original image pixels. */
  box: Quad;
}

export interface OcrResult {
  width: number;
  height: number;
  /** Top to bottom, then left to right. */
  lines: OcrLine[];
}

function outputOf(outputs: Record<string, Tensor>, name: string, graph: string): Tensor & { data: Float32Array } {
  const tensor = outputs[name];
  if (!tensor || !(tensor.data instanceof Float32Array)) {
    throw new Error(`${graph} returned no float32 '${name}' (got: ${Object.keys(outputs).join(', ')}); is the catalog pointing at a PaddleOCR v4 graph?`);
  }
  return tensor as Tensor & { data: Float32Array };
}

/** Recognises the crops in batches of similar aspect ratio, so short lines are not padded to the longest one. */
async function recognise(image: RgbImage, crops: LineCrop[], ctx: HandlerContext): Promise<{ texts: DecodedText[]; computeUs: number }> {
  const alphabet = loadDictionary(ctx.assetPath('dictionary'));
  const session = ctx.session('ocr-rec');
  const order = crops.map((_, i) => i).sort((a, b) => recognitionWidth(crops[a]!) - recognitionWidth(crops[b]!));
  const texts: DecodedText[] = new Array(crops.length);
  let computeUs = 0;
  for (let start = 0; start < order.length; start += recBatchSize) {
    const members = order.slice(start, start + recBatchSize);
    const { outputs, computeUs: runUs } = await session.run({ x: recognitionBatch(image, members.map((i) => crops[i]!)) });
    computeUs += runUs;
    const probs = outputOf(outputs, recOutput, 'ocr-rec');
    const [, steps, classes] = probs.dims as [number, number, number];
    members.forEach((crop, n) => {
      texts[crop] = ctcGreedyDecode(probs.data, n * steps * classes, steps, classes, alphabet);
    });
  }
  return { texts, computeUs };
}

export async function recogniseImage(input: Uint8Array, ctx: HandlerContext): Promise<{ result: OcrResult; computeUs: number }> {
  const image = await decodeImage(input);
  const det = await detectionInput(image);
  const detRun = await ctx.session('ocr-det').run({ x: det.tensor });
  const prob = outputOf(detRun.outputs, detOutput, 'ocr-det');
  const detected = dbPostprocess({ data: prob.data, width: det.width, height: det.height }, image);
  const boxes = readingOrder(
    detected.map((d) => ({ box: clampQuad(growQuad(d.box, lineMarginRatio * shortSide(d.box)), image.width, image.height) })),
  );
  const { texts, computeUs: recUs } = await recognise(image, boxes.map((b) => lineCrop(b.box)), ctx);
  const lines = boxes
    .map((b, i) => ({ text: texts[i]!.text, score: texts[i]!.score, box: b.box }))
    .filter((line) => line.score >= minLineScore && line.text.trim() !== '');
  return { result: { width: image.width, height: image.height, lines }, computeUs: detRun.computeUs + recUs };
}

const encoder = new TextEncoder();

const imageOcr: ModelHandler<OcrResult> = {
  id: 'image-ocr',
  modality: 'image',
  outputs: [
    { name: 'text', type: 'bytes', shape: [-1] },
    { name: 'scores', type: 'float32', shape: [-1] },
    { name: 'boxes', type: 'float32', shape: [-1, 4, 2] },
  ],
  checkInput: checkImageInput,
  sizeUnit: 'pixels',
  measureInput: measureImage,
  /** The mean score of the lines read; 0 when none was found, since the edge's variant may have missed the text. */
  confidence: ({ lines }) => (lines.length === 0 ? 0 : lines.reduce((sum, line) => sum + line.score, 0) / lines.length),
  async run(input, ctx) {
    const { result, computeUs } = await recogniseImage(input, ctx);
    const { lines } = result;
    return {
      result,
      tensors: {
        text: bytesTensor(lines.map((line) => encoder.encode(line.text))),
        scores: float32([lines.length], Float32Array.from(lines, (line) => line.score)),
        boxes: float32([lines.length, 4, 2], Float32Array.from(lines.flatMap((line) => line.box.flat()))),
      },
      computeUs,
    };
  },
  /**
   * A page at the detection size with a few lines of text: its timed run
   * seeds the edge's service-time curve, so it must cost what a typical
   * photo costs (a tiny image would make every real one look 100× dearer).
   */
  async warmupInput() {
    const lines = ['Invoice 2041', 'Order status: shipped', 'Total 129.00 EUR', 'Delivery Tuesday', 'Thank you'];
    const text = lines.map((line, i) => `<text x="48" y="${110 + i * 120}" font-family="sans-serif" font-size="56">${line}</text>`).join('');
    const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${detMaxSide}" height="720"><rect width="100%" height="100%" fill="#fff"/>${text}</svg>`;
    return new Uint8Array(await sharp(Buffer.from(svg)).png().toBuffer());
  },
};

registerHandler(imageOcr);
