/**
 * Trains the text-intent classifier on the project's own zh/en/ja support-chat
 * sentences and writes it as ONNX:
 *
 *   features[N,D] → MatMul+Add (H) → Relu → MatMul+Add (C) → logits → Softmax → probabilities
 *
 * D is TEXT_FEATURE_DIM (shared/handlers/text-features.ts), H is config.hidden.
 * Hand-written backprop with Adam (decoupled weight decay), dropout and a seeded
 * RNG, so the same data gives the same file. Inputs are hashed n-gram vectors
 * with ~100-200 non-zeros out of D: the first layer only touches those rows,
 * forward, backward and in the optimiser (lazy Adam, as for embeddings).
 *
 * Run: npx tsc -p . && node dist/models/text-intent/train.js [options]
 *
 *   (no options)        train on all of train.jsonl, score test.jsonl once, write the model,
 *                       labels.json and metrics.json
 *   --validate          train on train.jsonl minus a seeded validation split (15% of each
 *                       intent × language) and score that split; test.jsonl is not read, nothing is written
 *   --sweep             --validate for every D in SWEEP.dims × H in SWEEP.hiddens, as a table
 *   --dim N, --hidden N try another input width / hidden size (with --validate; a written
 *                       model must use TEXT_FEATURE_DIM, which the runtime handler feeds it)
 *   --prune R           the edge's int8-pruned variant, from the committed FP32 model: remove the
 *                       fraction R of hidden units by saliency (models/toolchain/prune.ts), fine-tune
 *                       on train.jsonl, quantize (dynamic INT8), check it against FP32 on test.jsonl
 *                       (size ≤ 30%, accuracy within 1 point), write text-intent.int8-pruned.onnx and
 *                       metrics.int8-pruned.json
 *
 * Hyper-parameters are chosen with --sweep on the validation split only; the test
 * split is scored once, by the run that writes the model, and never used to choose.
 * --prune reads it only to hold the variant to its bars, not to pick R or FINE_TUNE.
 */
import { createHash } from 'node:crypto';
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import ort from 'onnxruntime-node';
import { TEXT_FEATURE_DIM } from '../../shared/handlers/text-features.js';
import { createLogger } from '../../shared/log.js';
import { openSession } from '../../shared/ort/session.js';
import { packageRoot } from '../../shared/paths.js';
import { seededRandom } from '../../shared/seeded-random.js';
import { encodeModel } from '../onnx-graph.js';
import { compareLatency } from '../toolchain/latency.js';
import { floatWeight, parseModel, readModel } from '../toolchain/onnx-model.js';
import { checkRatio, hiddenUnitSaliency, keepColumns, keepRows, unitsToKeep } from '../toolchain/prune.js';
import { quantizeDynamic } from '../toolchain/quantize-dynamic.js';
import { assertLoadsInOnnxRuntime } from '../toolchain/verify-model.js';
import { argmax, config, GRAPH_NAME, predict, shapeOf, toExample, toOnnx, train, type Example, type Params, type Shape } from './mlp.js';
import { LANGUAGES, readSentences, type Sentence } from './sentences.js';

const modelDir = path.join(packageRoot, 'models', 'text-intent');
const files = {
  train: path.join(modelDir, 'data', 'train.jsonl'),
  test: path.join(modelDir, 'data', 'test.jsonl'),
  onnx: path.join(modelDir, 'text-intent.fp32.onnx'),
  int8Pruned: path.join(modelDir, 'text-intent.int8-pruned.onnx'),
  int8PrunedMetrics: path.join(modelDir, 'metrics.int8-pruned.json'),
  labels: path.join(modelDir, 'labels.json'),
  metrics: path.join(modelDir, 'metrics.json'),
};
/**
 * Fine-tuning after --prune: fewer epochs from the trained weights, at a third
 * of the first learning rate, so the remaining units adapt without relearning.
 * Set before looking at any result, not tuned on the test split.
 */
const FINE_TUNE = { epochs: 10, learningRate: 1e-3 } as const;
/** What the int8-pruned variant must keep (issue 5): size against the FP32 file, accuracy against FP32's. */
const INT8_PRUNED_BARS = { maxSizeRatio: 0.3, maxAccuracyDrop: 0.01 } as const;

/** The grid `--sweep` tries; the ONNX file (≈ 4·D·H bytes of fc1.weight) must stay within MAX_ONNX_BYTES. */
const SWEEP = { dims: [4096, 8192, 16384], hiddens: [128, 256] } as const;
const MAX_ONNX_BYTES = 10_000_000;
/** Share of each intent × language held back by --validate / --sweep, and the seed of that draw (not the training seed). */
const VALIDATION = { fraction: 0.15, seed: 20240613 } as const;

/** The sweep behind config.hidden and TEXT_FEATURE_DIM (validation accuracy; test.jsonl played no part), kept in metrics.json. */
const SELECTION = {
  method: `--sweep: train on train.jsonl minus ${VALIDATION.fraction * 100}% of each intent × language (seed ${VALIDATION.seed}), accuracy on that held-back part; best accuracy with ONNX ≤ ${MAX_ONNX_BYTES} bytes, smaller model on a tie`,
  validationAccuracy: { D4096xH128: 0.881, D4096xH256: 0.8821, D8192xH128: 0.8915, D8192xH256: 0.8996, D16384xH128: 0.9067, D16384xH256: 0.8996 },
  excluded: { D16384xH256: 'ONNX 16803703 bytes > 10000000' },
  chosen: { featureDim: TEXT_FEATURE_DIM, hidden: config.hidden },
};

/** The written graph must compute what was trained: compare onnxruntime-node with the JS forward pass. */
async function verifyWithOnnxRuntime(onnx: Uint8Array, p: Params, rows: Example[]): Promise<number> {
  const { dim: D } = shapeOf(p);
  const session = await ort.InferenceSession.create(onnx);
  try {
    const batch = new Float32Array(rows.length * D);
    rows.forEach((row, r) => row.indices.forEach((i, k) => (batch[r * D + i] = row.values[k])));
    const result = await session.run({ features: new ort.Tensor('float32', batch, [rows.length, D]) });
    let maxDiff = 0;
    rows.forEach((row, r) => {
      const expected = predict(p, row);
      for (const name of ['logits', 'probabilities'] as const) {
        const actual = result[name].data as Float32Array;
        const classes = expected[name].length;
        for (let c = 0; c < classes; c++) maxDiff = Math.max(maxDiff, Math.abs(actual[r * classes + c] - expected[name][c]));
      }
    });
    if (!(maxDiff <= 1e-4)) throw new Error(`onnxruntime output differs from the trained model by ${maxDiff} (allowed 1e-4): the ONNX export is wrong`);
    return maxDiff;
  } finally {
    await session.release();
  }
}

const sha256 = (bytes: Uint8Array | string) => createHash('sha256').update(bytes).digest('hex');
const round4 = (x: number) => Math.round(x * 1e4) / 1e4;

const accuracyOf = (p: Params, rows: Example[]) => rows.filter((row) => argmax(predict(p, row).probabilities) === row.label).length / rows.length;

/**
 * Splits the training sentences into fit and validation parts: of each intent × language,
 * a seeded shuffle puts round(fraction × n) sentences (at least one) into validation.
 */
function validationSplit(sentences: Sentence[]): { fit: Sentence[]; validation: Sentence[] } {
  const random = seededRandom(VALIDATION.seed);
  const groups = new Map<string, number[]>();
  sentences.forEach((s, i) => {
    const key = `${s.intent}\t${s.lang}`;
    groups.set(key, [...(groups.get(key) ?? []), i]);
  });
  const held = new Set<number>();
  for (const key of [...groups.keys()].sort()) {
    const members = groups.get(key)!;
    for (let i = members.length - 1; i > 0; i--) {
      const j = Math.floor(random() * (i + 1));
      [members[i], members[j]] = [members[j], members[i]];
    }
    const take = members.length < 2 ? 0 : Math.max(1, Math.round(members.length * VALIDATION.fraction));
    members.slice(0, take).forEach((i) => held.add(i));
  }
  return { fit: sentences.filter((_, i) => !held.has(i)), validation: sentences.filter((_, i) => held.has(i)) };
}

interface ValidationResult extends Shape {
  accuracy: number;
  perLanguage: Record<string, number>;
  onnxBytes: number;
  seconds: number;
}

/** Trains on the fit part and scores the validation part; test.jsonl is never read here. */
function validate(sentences: Sentence[], shape: Shape, quiet: boolean): ValidationResult {
  const started = performance.now();
  const intents = [...new Set(sentences.map((s) => s.intent))].sort();
  const labelOf = new Map(intents.map((intent, i) => [intent, i]));
  const { fit, validation } = validationSplit(sentences);
  const fitSet = fit.map((s) => toExample(s, labelOf, shape.dim));
  const validationSet = validation.map((s) => toExample(s, labelOf, shape.dim));
  if (!quiet) console.log(`D=${shape.dim} H=${shape.hidden}: ${fitSet.length} fit and ${validationSet.length} validation sentences`);
  const params = train(fitSet, intents.length, shape, { quiet });
  const seconds = (performance.now() - started) / 1000;
  return {
    ...shape,
    accuracy: round4(accuracyOf(params, validationSet)),
    perLanguage: Object.fromEntries(LANGUAGES.map((lang) => [lang, round4(accuracyOf(params, validationSet.filter((x) => x.lang === lang)))])),
    onnxBytes: toOnnx(params, intents.length).length,
    seconds: Math.round(seconds * 10) / 10,
  };
}

function printValidation(results: ValidationResult[]): void {
  console.log('D      H    val acc  zh      en      ja      ONNX bytes  train s');
  for (const r of results) {
    const fits = r.onnxBytes <= MAX_ONNX_BYTES ? '' : `  > ${MAX_ONNX_BYTES}, too big`;
    console.log(
      `${String(r.dim).padEnd(6)} ${String(r.hidden).padEnd(4)} ${r.accuracy.toFixed(4)}   ${LANGUAGES.map((l) => r.perLanguage[l].toFixed(4)).join('  ')}  ${String(r.onnxBytes).padStart(10)}  ${r.seconds.toFixed(1).padStart(7)}${fits}`,
    );
  }
  const eligible = results.filter((r) => r.onnxBytes <= MAX_ONNX_BYTES);
  const best = eligible.sort((a, b) => b.accuracy - a.accuracy || a.dim * a.hidden - b.dim * b.hidden)[0];
  if (best) console.log(`best within ${MAX_ONNX_BYTES} bytes: D=${best.dim} H=${best.hidden} (validation accuracy ${best.accuracy})`);
  console.log(`validationAccuracy: ${JSON.stringify(Object.fromEntries(results.map((r) => [`D${r.dim}xH${r.hidden}`, r.accuracy])))}`);
}

function parseOptions() {
  const { values } = parseArgs({
    options: {
      validate: { type: 'boolean', default: false },
      sweep: { type: 'boolean', default: false },
      dim: { type: 'string' },
      hidden: { type: 'string' },
      prune: { type: 'string' },
    },
    strict: true,
  });
  const positive = (name: string, value: string | undefined, fallback: number) => {
    if (value === undefined) return fallback;
    const n = Number(value);
    if (!Number.isInteger(n) || n <= 0) throw new Error(`--${name} must be a positive integer, got '${value}'`);
    return n;
  };
  const shape: Shape = { dim: positive('dim', values.dim, TEXT_FEATURE_DIM), hidden: positive('hidden', values.hidden, config.hidden) };
  if (!values.validate && !values.sweep && (shape.dim !== TEXT_FEATURE_DIM || shape.hidden !== config.hidden)) {
    // The handler feeds TEXT_FEATURE_DIM-wide vectors, and metrics.json reports config: a written model must match both.
    throw new Error(
      `--dim/--hidden only apply with --validate; to ship D=${shape.dim} H=${shape.hidden}, set TEXT_FEATURE_DIM in shared/handlers/text-features.ts and config.hidden here`,
    );
  }
  let prune: number | undefined;
  if (values.prune !== undefined) {
    prune = Number(values.prune);
    checkRatio(prune);
    if (values.validate || values.sweep) throw new Error('--prune builds the int8-pruned variant from the committed FP32 model; it does not combine with --validate or --sweep');
  }
  return { validate: values.validate, sweep: values.sweep, shape, prune };
}

/** Overall and per-language accuracy of predicted labels against `rows`. */
function scoreOf(predicted: number[], rows: Example[]): Record<'overall' | (typeof LANGUAGES)[number], number> {
  const share = (subset: number[]) => round4(subset.filter((r) => predicted[r] === rows[r]!.label).length / subset.length);
  const all = rows.map((_, r) => r);
  return { overall: share(all), ...(Object.fromEntries(LANGUAGES.map((lang) => [lang, share(all.filter((r) => rows[r]!.lang === lang))])) as Record<(typeof LANGUAGES)[number], number>) };
}

const denseBatch = (rows: Example[], D: number) => {
  const batch = new Float32Array(rows.length * D);
  rows.forEach((row, r) => row.indices.forEach((i, k) => (batch[r * D + i] = row.values[k]!)));
  return batch;
};

/** The labels onnxruntime predicts for `rows` with a model file (path or bytes): what the edge would answer. */
async function onnxPredictions(onnx: string | Uint8Array, rows: Example[], D: number): Promise<number[]> {
  const session = typeof onnx === 'string' ? await ort.InferenceSession.create(onnx) : await ort.InferenceSession.create(onnx);
  try {
    const result = await session.run({ features: new ort.Tensor('float32', denseBatch(rows, D), [rows.length, D]) });
    const probabilities = result.probabilities!.data as Float32Array;
    const classes = probabilities.length / rows.length;
    return rows.map((_, r) => argmax(probabilities.subarray(r * classes, (r + 1) * classes)));
  } finally {
    await session.release();
  }
}

/** The committed FP32 model's weights, read back from its ONNX file, so --prune starts from exactly what ships. */
function readFp32Params(): Params {
  const weights = new Map(readModel(files.onnx).graph!.initializer.map((t) => [t.name, floatWeight(t)?.values]));
  const get = (name: string) => {
    const values = weights.get(name);
    if (!values) throw new Error(`${files.onnx} has no float initializer '${name}' — rebuild it with npm run train:text`);
    return values;
  };
  const p = { w1: get('fc1.weight'), b1: get('fc1.bias'), w2: get('fc2.weight'), b2: get('fc2.bias') };
  if (p.w1.length !== TEXT_FEATURE_DIM * p.b1.length) throw new Error(`${files.onnx} is not D=${TEXT_FEATURE_DIM} wide — rebuild it with npm run train:text`);
  return p;
}

/**
 * --prune R: the edge's int8-pruned variant. Prunes the committed FP32 model's
 * hidden units, fine-tunes the rest on train.jsonl, quantizes (dynamic INT8),
 * and writes it only if it meets INT8_PRUNED_BARS against FP32 on test.jsonl.
 */
async function buildInt8Pruned(trainSentences: Sentence[], ratio: number): Promise<void> {
  const intents = [...new Set(trainSentences.map((s) => s.intent))].sort();
  if (readFileSync(files.labels, 'utf8') !== JSON.stringify(intents, null, 2) + '\n') {
    throw new Error(`${files.labels} does not list the intents of train.jsonl — rebuild the FP32 model first (npm run train:text)`);
  }
  const labelOf = new Map(intents.map((intent, i) => [intent, i]));
  const D = TEXT_FEATURE_DIM;
  const trainSet = trainSentences.map((s) => toExample(s, labelOf, D));
  const testSet = readSentences(files.test).map((s) => toExample(s, labelOf, D));
  const classes = intents.length;

  const fp32 = readFp32Params();
  const hidden = fp32.b1.length;
  const keep = unitsToKeep(hiddenUnitSaliency(fp32.w1, fp32.b1, fp32.w2, hidden), ratio);
  const pruned: Params = { w1: keepColumns(fp32.w1, hidden, keep), b1: Float32Array.from(keep, (j) => fp32.b1[j]!), w2: keepRows(fp32.w2, classes, keep), b2: fp32.b2 };
  console.log(`pruned ${hidden} → ${keep.length} hidden units (ratio ${ratio}); fine-tuning ${FINE_TUNE.epochs} epochs at learning rate ${FINE_TUNE.learningRate}`);
  const tuned = train(trainSet, classes, { dim: D, hidden: keep.length }, { start: pruned, ...FINE_TUNE });
  const tunedOnnx = toOnnx(tuned, classes);
  await verifyWithOnnxRuntime(tunedOnnx, tuned, testSet.filter((_, i) => i % 45 === 0));

  const model = parseModel(tunedOnnx, 'the pruned model');
  const report = quantizeDynamic(model);
  const int8 = encodeModel(model);
  await assertLoadsInOnnxRuntime(int8, 'int8-pruned', 'report it: the quantizer produced a graph onnxruntime refuses');

  const accuracy = {
    fp32: scoreOf(await onnxPredictions(files.onnx, testSet, D), testSet),
    prunedBeforeFineTune: scoreOf(testSet.map((row) => argmax(predict(pruned, row).probabilities)), testSet),
    prunedFineTuned: scoreOf(testSet.map((row) => argmax(predict(tuned, row).probabilities)), testSet),
    int8Pruned: scoreOf(await onnxPredictions(int8, testSet, D), testSet),
  };
  const fp32Bytes = statSync(files.onnx).size;
  const bytes = { fp32: fp32Bytes, pruned: tunedOnnx.length, int8Pruned: int8.length, ratio: round4(int8.length / fp32Bytes) };
  console.log(`held-out accuracy: fp32 ${accuracy.fp32.overall}, pruned ${accuracy.prunedBeforeFineTune.overall} → fine-tuned ${accuracy.prunedFineTuned.overall}, int8-pruned ${accuracy.int8Pruned.overall}`);
  console.log(`size: fp32 ${bytes.fp32}, pruned ${bytes.pruned}, int8-pruned ${bytes.int8Pruned} bytes (${(bytes.ratio * 100).toFixed(1)}% of fp32)`);
  const drop = accuracy.fp32.overall - accuracy.int8Pruned.overall;
  if (bytes.ratio > INT8_PRUNED_BARS.maxSizeRatio || drop > INT8_PRUNED_BARS.maxAccuracyDrop) {
    throw new Error(
      `the int8-pruned model misses its bars (size ≤ ${INT8_PRUNED_BARS.maxSizeRatio * 100}% of FP32: ${(bytes.ratio * 100).toFixed(1)}%; accuracy within ${INT8_PRUNED_BARS.maxAccuracyDrop * 100} point of FP32: ${(drop * 100).toFixed(2)} points lower) — nothing was written; try a smaller --prune ratio`,
    );
  }
  writeFileSync(files.int8Pruned, int8);

  const log = createLogger('train', 'warn');
  const sessionOptions = { providers: ['cpu'], intraOpThreads: 1 };
  const [fp32Session, int8Session] = [await openSession(GRAPH_NAME, files.onnx, sessionOptions, log), await openSession(GRAPH_NAME, files.int8Pruned, sessionOptions, log)];
  const latency = [];
  try {
    for (const batch of [1, 16]) {
      const rows = testSet.slice(0, batch);
      latency.push(await compareLatency(fp32Session, int8Session, batch, { features: { type: 'float32', dims: [batch, D], data: denseBatch(rows, D) } }));
    }
  } finally {
    await Promise.all([fp32Session.close(), int8Session.close()]);
  }
  for (const l of latency) console.log(`batch ${l.batch}: fp32 ${l.baselineUs} µs, int8-pruned ${l.candidateUs} µs per call (fp32/int8 ${l.speedup})`);

  const metrics = {
    model: 'text-intent',
    variant: 'int8-pruned',
    from: path.relative(packageRoot, files.onnx),
    method: `--prune ${ratio}: hidden units ranked by ||incoming weights and bias|| × ||outgoing weights|| (models/toolchain/prune.ts), the top ${keep.length} of ${hidden} kept, fine-tuned on train.jsonl, then dynamic INT8 (models/toolchain/quantize-dynamic.ts)`,
    fineTune: { ...FINE_TUNE, batchSize: config.batchSize, weightDecay: config.weightDecay, inputDropout: config.inputDropout, hiddenDropout: config.hiddenDropout, seed: config.seed },
    hidden: { before: hidden, after: keep.length },
    bars: INT8_PRUNED_BARS,
    bytes,
    heldOutAccuracy: accuracy,
    quantized: report.quantized,
    keptFloat: report.keptFloat,
    latencyUs: {
      how: 'onnxruntime-node CPU, 1 intra-op thread, held-out sentences as the batch, median over 15 interleaved rounds of 20 runs; fp32 = the committed FP32 file',
      host: `${process.platform}-${process.arch}`,
      results: latency.map((l) => ({ batch: l.batch, fp32: l.baselineUs, int8Pruned: l.candidateUs, speedup: l.speedup })),
    },
  };
  writeFileSync(files.int8PrunedMetrics, JSON.stringify(metrics, null, 2) + '\n');
  console.log(`wrote ${path.relative(packageRoot, files.int8Pruned)} and ${path.basename(files.int8PrunedMetrics)}; sha256 for models/catalog.yaml:`);
  console.log(`  ${sha256(int8)}  ${path.relative(packageRoot, files.int8Pruned)}`);
}

async function main(): Promise<void> {
  const options = parseOptions();
  const started = performance.now();
  const trainSentences = readSentences(files.train);
  if (options.prune !== undefined) {
    await buildInt8Pruned(trainSentences, options.prune);
    return;
  }

  if (options.sweep || options.validate) {
    const shapes = options.sweep ? SWEEP.dims.flatMap((dim) => SWEEP.hiddens.map((hidden) => ({ dim, hidden }))) : [options.shape];
    const results: ValidationResult[] = [];
    for (const shape of shapes) {
      results.push(validate(trainSentences, shape, options.sweep));
      if (options.sweep) console.log(`D=${shape.dim} H=${shape.hidden}: validation accuracy ${results.at(-1)!.accuracy} (${results.at(-1)!.seconds} s)`);
    }
    printValidation(results);
    return;
  }

  const shape: Shape = { dim: TEXT_FEATURE_DIM, hidden: config.hidden };
  const testSentences = readSentences(files.test);
  const intents = [...new Set(trainSentences.map((s) => s.intent))].sort();
  const labelOf = new Map(intents.map((intent, i) => [intent, i]));
  const trainSet = trainSentences.map((s) => toExample(s, labelOf, shape.dim));
  const testSet = testSentences.map((s) => toExample(s, labelOf, shape.dim));
  console.log(`${trainSet.length} training and ${testSet.length} held-out sentences, ${intents.length} intents, D=${shape.dim} H=${shape.hidden}`);

  const params = train(trainSet, intents.length, shape);
  const trainedMs = performance.now() - started;

  const perLanguage: Record<string, { train: number; test: number; accuracy: number }> = {};
  let correct = 0;
  for (const lang of LANGUAGES) {
    const rows = testSet.filter((x) => x.lang === lang);
    let right = 0;
    for (const row of rows) {
      const predicted = argmax(predict(params, row).probabilities);
      // Only the count is reported: printing the misses invites tuning the data on the held-out split.
      if (predicted === row.label) right++;
    }
    correct += right;
    perLanguage[lang] = { train: trainSet.filter((x) => x.lang === lang).length, test: rows.length, accuracy: round4(right / rows.length) };
  }
  const accuracy = round4(correct / testSet.length);

  const onnx = toOnnx(params, intents.length);
  if (onnx.length > MAX_ONNX_BYTES) throw new Error(`the ONNX model is ${onnx.length} bytes, over the ${MAX_ONNX_BYTES}-byte budget: pick a smaller D × H`);
  // A few rows of each language, spread over the split.
  const probeRows = testSet.filter((_, i) => i % 45 === 0);
  const maxDiff = await verifyWithOnnxRuntime(onnx, params, probeRows);

  const labelsJson = JSON.stringify(intents, null, 2) + '\n';
  const metrics = {
    model: 'text-intent',
    graph: GRAPH_NAME,
    heldOutAccuracy: { overall: accuracy, ...Object.fromEntries(LANGUAGES.map((lang) => [lang, perLanguage[lang].accuracy])) },
    sentences: { train: trainSet.length, test: testSet.length, perLanguage },
    intents,
    training: { ...config, featureDim: shape.dim, classes: intents.length, onnxBytes: onnx.length, trainSeconds: Math.round(trainedMs / 100) / 10 },
    selection: SELECTION,
  };
  writeFileSync(files.onnx, onnx);
  writeFileSync(files.labels, labelsJson);
  writeFileSync(files.metrics, JSON.stringify(metrics, null, 2) + '\n');

  console.log(`trained in ${(trainedMs / 1000).toFixed(1)} s`);
  console.log(`held-out accuracy: overall ${accuracy}, ${LANGUAGES.map((l) => `${l} ${perLanguage[l].accuracy}`).join(', ')}`);
  console.log(`onnxruntime matches the JS forward pass on ${probeRows.length} rows (max |diff| ${maxDiff.toExponential(2)})`);
  console.log(`wrote ${path.relative(packageRoot, files.onnx)} (${onnx.length} bytes), labels.json, metrics.json`);
  console.log('sha256 for models/catalog.yaml:');
  console.log(`  ${sha256(onnx)}  ${path.relative(packageRoot, files.onnx)}`);
  console.log(`  ${sha256(labelsJson)}  ${path.relative(packageRoot, files.labels)}`);
}

await main();
