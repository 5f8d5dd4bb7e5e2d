import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { findModel, loadCatalog } from '../../shared/catalog.js';
import { InferError } from '../../shared/errors.js';
import { MAX_TEXT_CHARS } from '../../shared/handlers/text-intent.js';
import { TEXT_FEATURE_DIM, textFeatures } from '../../shared/handlers/text-features.js';
import { loadModel, type LoadedModel } from '../../shared/loaded-model.js';
import { createLogger } from '../../shared/log.js';
import { packageRoot } from '../../shared/paths.js';

interface Sentence {
  text: string;
  lang: 'zh' | 'en' | 'ja';
  intent: string;
}

interface IntentResult {
  intent: string;
  confidence: number;
  topK: { intent: string; score: number }[];
}

/**
 * Regression floors per language: the accuracy the committed model measures on
 * the held-out split (models/text-intent/metrics.json: zh 0.9722, en 0.9653,
 * ja 0.9653) less ~5 points, rounded down to a multiple of 0.05.
 */
const HELD_OUT_ACCURACY_FLOOR = { zh: 0.9, en: 0.9, ja: 0.9 } as const;
/** The held-out split has 6 sentences for each intent in each language. */
const HELD_OUT_PER_INTENT = 6;

const heldOut: Sentence[] = readFileSync(path.join(packageRoot, 'models', 'text-intent', 'data', 'test.jsonl'), 'utf8')
  .split('\n')
  .filter((line) => line.trim() !== '')
  .map((line) => JSON.parse(line) as Sentence);

const utf8 = (text: string) => new TextEncoder().encode(text);
const isInvalidArgument = (message: RegExp) => (err: unknown) =>
  err instanceof InferError && err.code === 'INVALID_ARGUMENT' && message.test(err.message);

let model: LoadedModel;

before(async () => {
  model = await loadModel(findModel(loadCatalog(), 'text-intent'), 'fp32', { providers: ['cpu'], intraOpThreads: 1 }, createLogger('test', 'silent'));
});

after(() => model.close());

async function classify(text: string): Promise<IntentResult> {
  return (await model.run(utf8(text))).result as unknown as IntentResult;
}

test('held-out sentences are classified at or above the accuracy floor in zh, en and ja', async () => {
  const results = await Promise.all(heldOut.map((s) => classify(s.text)));
  for (const lang of ['zh', 'en', 'ja'] as const) {
    const rows = heldOut.map((s, i) => ({ s, predicted: results[i]!.intent })).filter((r) => r.s.lang === lang);
    assert.ok(rows.length >= 24 * HELD_OUT_PER_INTENT, `${lang}: expected at least ${HELD_OUT_PER_INTENT} held-out sentences for each of 24 intents, found ${rows.length}`);
    const accuracy = rows.filter((r) => r.predicted === r.s.intent).length / rows.length;
    assert.ok(accuracy >= HELD_OUT_ACCURACY_FLOOR[lang], `${lang}: held-out accuracy ${accuracy.toFixed(3)} < ${HELD_OUT_ACCURACY_FLOOR[lang]}`);
  }
});

test('held-out sentences in each language get their intent', async () => {
  const cases: [string, string][] = [
    ['How long does it take for the refund to show up on my card?', 'refund'],
    ['春节期间营业时间有变化吗？', 'opening_hours'],
    ['血圧の薬をまた処方してほしいんですが', 'prescription_refill'],
  ];
  for (const [text, intent] of cases) {
    assert.ok(heldOut.some((s) => s.text === text && s.intent === intent), `'${text}' is not in the held-out split`);
    assert.equal((await classify(text)).intent, intent, text);
  }
});

test('the result names the top intent and the top 3 in falling order, and the tensors match the declared outputs', async () => {
  const output = await model.run(utf8('My card was declined at checkout'));
  const result = output.result as unknown as IntentResult;
  assert.equal(result.topK.length, 3);
  for (let i = 1; i < result.topK.length; i++) assert.ok(result.topK[i - 1]!.score >= result.topK[i]!.score, 'topK is sorted by score');
  const sum = result.topK.reduce((s, k) => s + k.score, 0);
  assert.ok(sum <= 1 + 1e-6, `top-3 scores sum to ${sum}`);
  assert.equal(result.intent, result.topK[0]!.intent);
  assert.equal(result.confidence, result.topK[0]!.score);

  const { intent, confidence, probabilities } = output.tensors;
  assert.deepEqual(intent, { type: 'bytes', dims: [1], data: [utf8(result.intent)] });
  assert.equal(confidence!.type, 'float32');
  assert.deepEqual(confidence!.dims, [1]);
  assert.equal(probabilities!.type, 'float32');
  assert.deepEqual(probabilities!.dims, [1, (probabilities!.data as Float32Array).length]);
  assert.ok(output.computeUs > 0);
  assert.deepEqual(
    model.handler.outputs.map((o) => o.name),
    ['intent', 'confidence', 'probabilities'],
  );
});

test('empty, whitespace-only, invalid UTF-8, symbol-only and oversize inputs are rejected, and the model still answers', async () => {
  await assert.rejects(model.run(new Uint8Array(0)), isInvalidArgument(/empty/));
  await assert.rejects(model.run(utf8(' \n\t\u3000 ')), isInvalidArgument(/empty or only whitespace/));
  await assert.rejects(model.run(Uint8Array.of(0x57, 0x68, 0xff, 0xfe, 0x80)), isInvalidArgument(/not valid UTF-8.*57 68 ff fe 80/));
  await assert.rejects(model.run(utf8('?!… ——')), isInvalidArgument(/no letters or digits/));
  // Characters, not bytes: 4097 CJK characters are 12291 UTF-8 bytes.
  await assert.rejects(model.run(utf8('退'.repeat(MAX_TEXT_CHARS + 1))), isInvalidArgument(new RegExp(`${MAX_TEXT_CHARS + 1} characters, the limit is ${MAX_TEXT_CHARS}`)));
  assert.ok((await classify('退'.repeat(MAX_TEXT_CHARS))).intent, 'exactly the limit is accepted');
  assert.equal((await classify('Where is my order? It still has not arrived')).intent, 'order_status');
});

test('features are deterministic, L2-normalised and folded by NFKC, case and digits', () => {
  const text = 'Where is my order #48213? 注文はいつ届きますか';
  const a = textFeatures(text);
  const b = textFeatures(text);
  assert.equal(a.length, TEXT_FEATURE_DIM);
  assert.deepEqual(a, b);
  const norm = Math.sqrt(a.reduce((s, v) => s + v * v, 0));
  assert.ok(Math.abs(norm - 1) < 1e-5, `L2 norm is ${norm}`);
  assert.deepEqual(textFeatures('ＲＥＦＵＮＤ ｐｌｅａｓｅ'), textFeatures('refund please'));
  assert.deepEqual(textFeatures('order 12345'), textFeatures('order 99999'));
  assert.ok(textFeatures('?!').every((v) => v === 0), 'no letters or digits gives the zero vector');
});
