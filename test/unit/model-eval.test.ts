/**
 * `splitinfer model eval`: the shipped variants against fp32 through the
 * catalog and the handlers, on small subsets of the shipped held-out data
 * (passed with --data, so the test stays quick), and the errors a user meets
 * for a wrong model, variant or data set.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, test } from 'node:test';
import { promisify } from 'node:util';
import { realPhotos } from '../../models/image-encoder/photo-like-images.js';
import { heldOutSentencesPath, readSentences } from '../../models/text-intent/sentences.js';
import { packageRoot } from '../../shared/paths.js';

const execFileAsync = promisify(execFile);
const cli = path.join(packageRoot, 'dist', 'shared', 'cli.js');
const dir = mkdtempSync(path.join(os.tmpdir(), 'splitinfer-eval-'));
const ocrEval = path.join(packageRoot, 'models', 'image-ocr', 'eval');

interface EvalJson {
  model: string;
  reference: string;
  variant: string;
  basis: 'labels' | 'reference';
  samples: number;
  sampleUnit: string;
  referenceQuality: number;
  variantQuality: number;
  difference: number;
  groups: Record<string, { reference: number; candidate: number; samples: number }>;
}

async function evalJson(...args: string[]): Promise<EvalJson> {
  return JSON.parse((await execFileAsync(process.execPath, [cli, 'model', 'eval', '--json', ...args])).stdout) as EvalJson;
}

/** Runs the CLI expecting it to fail; returns what it printed on stderr. */
async function evalError(...args: string[]): Promise<string> {
  const err = await execFileAsync(process.execPath, [cli, 'model', 'eval', ...args]).then(
    () => assert.fail(`eval ${args.join(' ')} succeeded`),
    (e: { code: number; stderr: string }) => e,
  );
  assert.equal(err.code, 1);
  return err.stderr;
}

describe('model eval', () => {
  test('text-intent: accuracy against the labels of the --data file, per language, for both variants', async () => {
    // Each sentence twice, once under its own intent and once under another: at most half can be right, so labels are really read.
    const picked = ['zh', 'en', 'ja'].flatMap((lang) => readSentences(heldOutSentencesPath).filter((s) => s.lang === lang).slice(0, 2));
    const wrong = (intent: string) => (intent === 'refund' ? 'invoice' : 'refund');
    const file = path.join(dir, 'sentences.jsonl');
    writeFileSync(file, picked.flatMap((s) => [JSON.stringify(s), JSON.stringify({ ...s, intent: wrong(s.intent) })]).join('\n') + '\n');
    const result = await evalJson('--model', 'text-intent', '--variant', 'int8-pruned', '--data', file);
    assert.equal(result.basis, 'labels');
    assert.equal(result.samples, 12);
    assert.deepEqual(Object.keys(result.groups).sort(), ['en', 'ja', 'zh']);
    for (const quality of [result.referenceQuality, result.variantQuality]) assert.ok(quality > 0.25 && quality <= 0.5, `accuracy ${quality}`);
    assert.equal(result.difference, result.variantQuality - result.referenceQuality);
  });

  test('audio-vad: frame agreement with fp32 on the shipped WAVs by default', async () => {
    const result = await evalJson('--model', 'audio-vad', '--variant', 'int8');
    assert.equal(result.basis, 'reference');
    assert.equal(result.referenceQuality, 1);
    assert.ok(result.variantQuality >= 0.99, `agreement ${result.variantQuality}`);
    assert.deepEqual(Object.keys(result.groups), ['speech-en.wav', 'speech-zh.wav']);
    assert.equal(result.samples, result.groups['speech-en.wav']!.samples + result.groups['speech-zh.wav']!.samples);
  });

  test('image-ocr: character accuracy on a folder with expected.json, printed for both and their difference', async () => {
    const data = path.join(dir, 'ocr');
    mkdirSync(data);
    const expected = JSON.parse(readFileSync(path.join(ocrEval, 'expected.json'), 'utf8')) as Record<string, string>;
    const subset = Object.fromEntries(['zh-000.png', 'en-000.png'].map((name) => [name, expected[name]!]));
    for (const name of Object.keys(subset)) copyFileSync(path.join(ocrEval, name), path.join(data, name));
    writeFileSync(path.join(data, 'expected.json'), JSON.stringify(subset));
    const { stdout } = await execFileAsync(process.execPath, [cli, 'model', 'eval', '--model', 'image-ocr', '--variant', 'int8', '--data', data]);
    assert.match(stdout, /^image-ocr: int8 vs fp32, character accuracy on 2 images/);
    const quality = (name: string) => Number(new RegExp(`^  ${name} +([\\d.]+)%$`, 'm').exec(stdout)?.[1]);
    assert.ok(quality('fp32') > 90 && quality('int8') > 90, stdout);
    assert.match(stdout, /^ {2}difference +[+-]\d+\.\d\d points$/m);
    assert.match(stdout, /^ {2}en: fp32 [\d.]+%, int8 [\d.]+% \(1 images\)$/m);
  });

  test('image-encoder: INT8 MobileNetV2 agreement with its fp32 on the held-out set by default (real photos and rendered scenes, nothing calibrated on), or on a folder', async () => {
    const held = await evalJson('--model', 'image-encoder', '--variant', 'mobilenet-v2-int8', '--reference', 'mobilenet-v2');
    assert.equal(held.basis, 'reference');
    assert.deepEqual(Object.keys(held.groups), ['real photos', 'photo-like']);
    assert.deepEqual([held.groups['real photos']!.samples, held.groups['photo-like']!.samples], [realPhotos('held-out').length, 64]);
    assert.equal(held.samples, realPhotos('held-out').length + 64);
    assert.ok(held.variantQuality >= 0.99, `agreement ${held.variantQuality}`);

    const data = path.join(dir, 'photos');
    mkdirSync(data);
    for (const photo of realPhotos('calibration').slice(0, 3)) writeFileSync(path.join(data, path.basename(photo.name)), photo.bytes);
    const folder = await evalJson('--model', 'image-encoder', '--variant', 'mobilenet-v2-int8', '--reference', 'mobilenet-v2', '--data', data);
    assert.deepEqual([folder.samples, Object.keys(folder.groups)], [3, ['images']]);
  });

  test('an unknown model or variant is refused naming the ones the catalog has', async () => {
    assert.match(await evalError('--model', 'ocr', '--variant', 'int8'), /unknown model 'ocr' — the catalog has: image-ocr, audio-vad, text-intent/);
    assert.match(await evalError('--model', 'audio-vad', '--variant', 'int4'), /model audio-vad has no variant 'int4' \(catalog has: fp32, int8\) — pass one of them with --variant/);
    assert.match(await evalError('--model', 'audio-vad', '--variant', 'int8', '--reference', 'fp16'), /no variant 'fp16'.*--reference/);
    assert.match(await evalError('--model', 'audio-vad', '--variant', 'fp32'), /--variant and --reference are both 'fp32'/);
    assert.match(await evalError('--variant', 'int8'), /--model ID and --variant V are required/);
  });

  test('a --data path that is missing or of the wrong kind says what the model expects', async () => {
    assert.match(await evalError('--model', 'audio-vad', '--variant', 'int8', '--data', path.join(dir, 'nothing')), /does not exist — expected a folder of 16 kHz mono WAV files/);
    assert.match(await evalError('--model', 'text-intent', '--variant', 'int8-pruned', '--data', dir), /is a folder — expected a JSONL file of labelled sentences/);
    assert.match(await evalError('--model', 'image-ocr', '--variant', 'int8', '--data', heldOutSentencesPath), /is a file — expected a folder of images with expected\.json/);
    const noWavs = mkdtempSync(path.join(dir, 'empty-'));
    assert.match(await evalError('--model', 'audio-vad', '--variant', 'int8', '--data', noWavs), /holds no \.wav files/);
    const notJsonl = path.join(dir, 'notes.txt');
    writeFileSync(notJsonl, 'where is my order?\n');
    assert.match(await evalError('--model', 'text-intent', '--variant', 'int8-pruned', '--data', notJsonl), /notes\.txt:1: not JSON — expected one JSON object/);
    const missingImage = mkdtempSync(path.join(dir, 'ocr-missing-'));
    writeFileSync(path.join(missingImage, 'expected.json'), JSON.stringify({ 'zh-999.png': '维护' }));
    assert.match(await evalError('--model', 'image-ocr', '--variant', 'int8', '--data', missingImage), /lists images that are not in .*: zh-999\.png/);
  });
});
