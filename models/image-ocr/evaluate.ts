/**
 * Compares the OCR `int8` variant with `fp32`: character accuracy of the
 * whole handler (detection, then recognition) over the evaluation set
 * (models/image-ocr/eval/, made by make-eval-set.ts), per language, by the
 * image-ocr evaluator of `splitinfer model eval`; and session latency of
 * each graph (models/toolchain/latency.ts: one thread, interleaved, median
 * of the rounds) on the inputs the handler makes (timing-feeds.ts): a
 * 960 px detection page, recognition batches of 1 and 16 lines. A third
 * column times the FP32 graph after only the exact pre-quantization folds
 * (fold-affine.ts), to show how much of the gain is the rewrite and how
 * much is INT8.
 *
 * Run after a build: node dist/models/image-ocr/evaluate.js [--rounds N]
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { findModel, loadCatalog, resolveSource } from '../../shared/catalog.js';
import { loadModel } from '../../shared/loaded-model.js';
import { createLogger } from '../../shared/log.js';
import { openSession } from '../../shared/ort/session.js';
import { encodeModel } from '../onnx-graph.js';
import { getEvaluator } from '../toolchain/evaluator.js';
import '../toolchain/evaluate-image-ocr.js';
import { foldAffineOps } from '../toolchain/fold-affine.js';
import { timeInterleaved } from '../toolchain/latency.js';
import { constantsToInitializers, readModel } from '../toolchain/onnx-model.js';
import { upgradeToOpset10 } from '../toolchain/opset-upgrade.js';
import { ocrTimingFeeds } from './timing-feeds.js';

function foldedFp32(file: string): Uint8Array {
  const model = readModel(file);
  constantsToInitializers(model);
  upgradeToOpset10(model, file);
  foldAffineOps(model);
  return encodeModel(model);
}

const percent = (x: number) => `${(x * 100).toFixed(2)}%`;
const ms = (us: number) => `${(us / 1000).toFixed(1)} ms`;

async function main(args: string[]): Promise<void> {
  const { values } = parseArgs({ args, options: { rounds: { type: 'string', default: '9' } } });
  const rounds = Number(values.rounds);
  if (!Number.isInteger(rounds) || rounds < 1) throw new Error(`--rounds ${values.rounds}: expected a whole number of timed rounds ≥ 1`);
  const catalogModel = findModel(loadCatalog(), 'image-ocr');
  const evaluator = getEvaluator('image-ocr');
  const log = createLogger('evaluate', 'silent');
  const options = { providers: ['cpu'], intraOpThreads: 1 };
  const [fp32, int8] = await Promise.all([loadModel(catalogModel, 'fp32', options, log), loadModel(catalogModel, 'int8', options, log)]);
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'splitinfer-ocr-folded-'));
  try {
    const acc = await evaluator.load(evaluator.defaultDataPath).evaluate(fp32, int8);
    const byGroup = (which: 'reference' | 'candidate') => Object.entries(acc.groups).map(([lang, g]) => `${lang} ${percent(g[which])}`).join(', ');
    console.log(`fp32: character accuracy ${byGroup('reference')}, all ${percent(acc.reference)} (${acc.samples} images)`);
    console.log(`int8: character accuracy ${byGroup('candidate')}, all ${percent(acc.candidate)} (${acc.samples} images)`);

    const feeds = await ocrTimingFeeds(fp32, [1, 16], evaluator.defaultDataPath);
    for (const graph of ['ocr-det', 'ocr-rec'] as const) {
      const foldedFile = path.join(tmp, `${graph}.folded.onnx`);
      writeFileSync(foldedFile, foldedFp32(resolveSource(catalogModel.variants.fp32!.graphs[graph]!.source)));
      const folded = await openSession(graph, foldedFile, options, log);
      try {
        const sessions = [fp32.sessions.get(graph)!, folded, int8.sessions.get(graph)!];
        // A 960 px page in detection costs hundreds of ms; one run per round keeps this to a minute.
        for (const batch of graph === 'ocr-det' ? [1] : [1, 16]) {
          const x = feeds[graph].get(batch)!;
          const [a, b, c] = (await timeInterleaved(sessions, x, { rounds, runsPerRound: batch === 1 && graph === 'ocr-rec' ? 5 : 1, warmupRuns: 1 })) as [number, number, number];
          console.log(
            `${graph} [${x.x!.dims.join('×')}]: fp32 ${ms(a)}, fp32 folded ${ms(b)}, int8 ${ms(c)} — ` +
              `int8 ${(a / c).toFixed(2)}× faster than fp32 (${(b / c).toFixed(2)}× than folded fp32)`,
          );
        }
      } finally {
        await folded.close();
      }
    }
  } finally {
    rmSync(tmp, { recursive: true, force: true });
    await Promise.all([fp32.close(), int8.close()]);
  }
}

await main(process.argv.slice(2));
