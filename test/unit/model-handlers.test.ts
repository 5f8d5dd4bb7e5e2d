/**
 * What each model handler tells the edge besides pre/post-processing: the
 * cheap input check, the size measure the estimators learn in, and how
 * confident a result is; and that the edge finds a task's handler through
 * the catalog, so adding a model family touches neither the edge nor this
 * lookup.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import sharp from 'sharp';
import { loadEdgeConfig } from '../../edge/config.js';
import { splitRequest } from '../../edge/tasks.js';
import { findModel, loadCatalog } from '../../shared/catalog.js';
import type { VadResult } from '../../shared/handlers/audio-vad.js';
import { getHandler, type ModelHandler } from '../../shared/handlers/handler.js';
import { decodeImage } from '../../shared/handlers/image-decode.js';
import type { OcrResult } from '../../shared/handlers/image-ocr.js';
import '../../shared/handlers/index.js';
import type { IntentResult } from '../../shared/handlers/text-intent.js';
import { decodeAudio } from '../../shared/handlers/wav.js';
import { loadModel, type LoadedModel } from '../../shared/loaded-model.js';
import { createLogger } from '../../shared/log.js';
import { buildWav, chunk, encodeSamples, fmtChunk, riff } from '../helpers/build-wav.js';
import { readFixture } from '../helpers/inference.js';

const catalog = loadCatalog();
const handlerOf = (model: string) => getHandler(findModel(catalog, model).handler);
const html = new TextEncoder().encode('<html><body>hi</body></html>');

describe("the edge finds a task's handler through the catalog", () => {
  test("each modality's task carries its configured model's handler; a video's input waits for its decoder", () => {
    const png = readFixture('ocr', 'invoice.png');
    const { tasks, rejected } = splitRequest(
      { id: 'h1', inputs: { text: 'Where is my order?', audio: new Uint8Array(64), image: png, video: [png, png] } },
      loadEdgeConfig(),
    );
    assert.deepEqual(rejected, []);
    assert.deepEqual(
      tasks.map((t) => [t.modality, t.model, t.handler.id, t.items.length]),
      [
        ['text', 'text-intent', 'text-intent', 1],
        ['audio', 'audio-vad', 'audio-vad', 1],
        ['image', 'image-ocr', 'image-ocr', 1],
        ['video', 'video-encoder', 'video-encoder', 0],
      ],
    );
    assert.deepEqual(tasks[3]!.video, [png, png]);
    assert.deepEqual(tasks[0]!.items[0], new TextEncoder().encode('Where is my order?'), 'text travels as UTF-8');
  });

  test('a modality whose model the catalog lacks is refused with NOT_FOUND; the others still run', () => {
    const config = loadEdgeConfig(undefined, { modalities: { audio: { model: 'no-such-model', localVariant: '' } } });
    const { tasks, rejected } = splitRequest({ id: 'h2', inputs: { audio: new Uint8Array(64), text: 'refund please' } }, config);
    assert.deepEqual(tasks.map((t) => t.modality), ['text']);
    assert.equal(rejected[0]!.modality, 'audio');
    assert.equal(rejected[0]!.error!.code, 'NOT_FOUND');
    assert.match(rejected[0]!.error!.message, /^unknown model 'no-such-model' \(catalog has: image-ocr, audio-vad, text-intent, image-encoder, video-encoder\)$/);
  });

  test("an input the model's handler refuses becomes that modality's INVALID_ARGUMENT, labelled by modality", () => {
    const { tasks, rejected } = splitRequest({ id: 'h3', inputs: { text: '  ', image: html, audio: new Uint8Array(64) } }, loadEdgeConfig());
    assert.deepEqual(tasks.map((t) => t.modality), ['audio']);
    assert.deepEqual(
      rejected.map((r) => [r.modality, r.error!.code, r.error!.message]),
      [
        ['text', 'INVALID_ARGUMENT', 'text input is empty — send the text to classify'],
        ['image', 'INVALID_ARGUMENT', 'image input: 28 bytes starting 3c 68 74 6d are not a JPEG/PNG/WebP image — send the file bytes, not a path or another format'],
      ],
    );
  });

  test('a video model must answer sequences: config naming a frame model for video is refused per request', () => {
    const config = loadEdgeConfig(undefined, { modalities: { video: { model: 'image-ocr', localVariant: 'int8' } } });
    const rejected = splitRequest({ id: 'h4', inputs: { video: [html] } }, config).rejected[0]!;
    assert.deepEqual([rejected.error!.code, rejected.error!.message], ['FAILED_PRECONDITION', 'config modalities.video.model names image-ocr, which is not a video model — use video-encoder']);
  });
});

describe('text-intent handler', () => {
  const handler = handlerOf('text-intent') as ModelHandler<IntentResult>;

  test('checks that the input is non-blank text and passes it on as UTF-8', () => {
    assert.deepEqual(handler.checkInput('où est ma commande ?', 'text input'), new TextEncoder().encode('où est ma commande ?'));
    assert.throws(() => handler.checkInput(42, 'text input'), { code: 'INVALID_ARGUMENT', message: 'text input must be a string, got number' });
    assert.throws(() => handler.checkInput(' \n\t', 'text input'), { code: 'INVALID_ARGUMENT', message: 'text input is empty — send the text to classify' });
  });

  test('measures UTF-8 bytes', async () => {
    assert.equal(handler.sizeUnit, 'text-bytes');
    assert.deepEqual(await handler.measureInput(new TextEncoder().encode('où est ma commande ?')), { amount: 21, bytes: 21 });
  });
});

describe('audio-vad handler', () => {
  const handler = handlerOf('audio-vad') as ModelHandler<VadResult>;
  const speech = readFixture('audio', 'speech-en.wav');

  test('checks that the input is non-empty bytes; decoding them is left to the run', () => {
    assert.equal(handler.checkInput(speech, 'audio input'), speech);
    assert.throws(() => handler.checkInput('speech.wav', 'audio input'), {
      code: 'INVALID_ARGUMENT',
      message: 'audio input must be binary WAV or 16 kHz PCM16 bytes, got string — in JSON send it base64-encoded',
    });
    assert.throws(() => handler.checkInput(new Uint8Array(0), 'audio input'), {
      code: 'INVALID_ARGUMENT',
      message: 'audio input is empty — send WAV file bytes or 16 kHz mono PCM16',
    });
  });

  test('measures seconds from the WAV headers: the length decoding gives, also for a streamed WAV that declares more than arrived', async () => {
    assert.equal(handler.sizeUnit, 'audio-seconds');
    const measured = await handler.measureInput(speech);
    assert.equal(measured.bytes, speech.length);
    assert.equal(measured.amount, decodeAudio(speech).samples.length / 16000);
    const spec = { format: 1, channels: 1, sampleRate: 16000, bitsPerSample: 16 };
    const streamed = riff([fmtChunk(spec), chunk('data', encodeSamples(spec, new Float32Array(8000)), 0xffffffff)]);
    assert.equal((await handler.measureInput(streamed)).amount, 0.5);
  });

  test('a WAV whose header does not read has an unknown size (NaN), not a guess', async () => {
    const truncated = buildWav({ format: 1, channels: 1, sampleRate: 16000, bitsPerSample: 16 }, new Float32Array(1600)).subarray(0, 30);
    const measured = await handler.measureInput(truncated);
    assert.ok(Number.isNaN(measured.amount));
    assert.equal(measured.bytes, 30);
  });
});

describe('image-ocr handler', () => {
  const handler = handlerOf('image-ocr') as ModelHandler<OcrResult>;

  test('checks the file signature only: JPEG, PNG and WebP pass, with the bytes unchanged', () => {
    for (const file of ['invoice.png', 'shipped-zh.jpg', 'edge-notice.webp']) {
      const bytes = readFixture('ocr', file);
      assert.equal(handler.checkInput(bytes, 'image input'), bytes, file);
    }
  });

  test('a non-image gets the one message the run gives too, showing its first bytes', async () => {
    const message = 'image input: 28 bytes starting 3c 68 74 6d are not a JPEG/PNG/WebP image — send the file bytes, not a path or another format';
    assert.throws(() => handler.checkInput(html, 'image input'), { code: 'INVALID_ARGUMENT', message });
    await assert.rejects(decodeImage(html), { code: 'INVALID_ARGUMENT', message });
    assert.throws(() => handler.checkInput(new Uint8Array(0), 'video frame 3'), {
      code: 'INVALID_ARGUMENT',
      message: 'video frame 3 is empty — send the bytes of a JPEG, PNG or WebP file',
    });
    assert.throws(() => handler.checkInput('photo.jpg', 'image input'), {
      code: 'INVALID_ARGUMENT',
      message: 'image input must be binary image bytes, got string — in JSON send the file base64-encoded',
    });
  });

  test('measures pixels as stored from the header; a header that does not read is an unknown size', async () => {
    assert.equal(handler.sizeUnit, 'pixels');
    for (const file of ['invoice.png', 'rotated-exif.jpg', 'edge-notice.webp']) {
      const bytes = readFixture('ocr', file);
      const { width, height } = await sharp(bytes).metadata();
      assert.deepEqual(await handler.measureInput(bytes), { amount: width! * height!, bytes: bytes.length, width, height }, file);
    }
    const truncated = readFixture('ocr', 'invoice.png').subarray(0, 20);
    assert.deepEqual(await handler.measureInput(truncated), { amount: Number.NaN, bytes: 20 });
  });
});

describe("confidence of real results of the edge's variants", () => {
  const log = createLogger('test', 'silent');
  const models: Record<string, LoadedModel> = {};

  before(async () => {
    for (const [id, variant] of [['text-intent', 'int8-pruned'], ['audio-vad', 'int8'], ['image-ocr', 'int8']] as const) {
      models[id] = await loadModel(findModel(catalog, id), variant, { providers: ['cpu'], intraOpThreads: 1 }, log);
    }
  });

  after(async () => {
    await Promise.all(Object.values(models).map((m) => m.close()));
  });

  test('text-intent: the top intent probability', async () => {
    const result = (await models['text-intent']!.run(new TextEncoder().encode('Where is my order?'))).result as unknown as IntentResult;
    assert.equal(models['text-intent']!.handler.confidence(result), result.confidence);
    assert.equal(result.confidence, result.topK[0]!.score);
  });

  test('audio-vad: clear speech is confident, and so is clear silence', async () => {
    const handler = models['audio-vad']!.handler;
    const speech = (await models['audio-vad']!.run(readFixture('audio', 'speech-en.wav'))).result as unknown as VadResult;
    const silence = (await models['audio-vad']!.run(new Uint8Array(16000 * 2))).result as unknown as VadResult;
    assert.equal(handler.confidence(speech), Math.abs(speech.frames.maxProbability - 0.5) * 2);
    assert.ok(handler.confidence(speech)! > 0.8, `speech ${handler.confidence(speech)}`);
    assert.ok(handler.confidence(silence)! > 0.8, `silence ${handler.confidence(silence)}`);
  });

  test('image-ocr: the mean score of the lines read, and 0 for a page where none was found', async () => {
    const handler = models['image-ocr']!.handler;
    const page = (await models['image-ocr']!.run(readFixture('ocr', 'invoice.png'))).result as unknown as OcrResult;
    assert.ok(page.lines.length > 0);
    const mean = page.lines.reduce((sum, line) => sum + line.score, 0) / page.lines.length;
    assert.ok(Math.abs(handler.confidence(page)! - mean) < 1e-12);
    const blank = new Uint8Array(await sharp({ create: { width: 320, height: 120, channels: 3, background: '#ffffff' } }).png().toBuffer());
    assert.equal(handler.confidence((await models['image-ocr']!.run(blank)).result), 0);
  });
});
