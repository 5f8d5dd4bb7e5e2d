/**
 * The quantization benchmark's report (test/bench/quant-report.ts) from a
 * real, tiny run (--quick: one round of one run; text-intent, audio-vad and
 * the light image encoder, the fast models): rows shaped as issue 5 specifies, sizes of the catalog
 * files, targets judged from the measured numbers, and the Markdown saying
 * what quality means and how latency was measured.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { before, describe, test } from 'node:test';
import { findModel, loadCatalog, resolveSource } from '../../shared/catalog.js';
import { quantMarkdown, writeQuantReport, type QuantReport } from '../bench/quant-report.js';
import { runQuantBenchmark } from '../bench/quant-run.js';

const catalog = loadCatalog();
let report: QuantReport;

before(async () => {
  report = await runQuantBenchmark({ models: ['text-intent', 'audio-vad', 'image-encoder'], quick: true, notes: ['unit test'] });
});

describe('bench:quant report', () => {
  test('one row per variant graph with the fields the issue names, measured and positive', () => {
    assert.deepEqual(
      report.models.map((r) => `${r.id}/${r.variant}/${r.graph} vs ${r.reference}`),
      ['audio-vad/int8/silero-vad vs fp32', 'text-intent/int8-pruned/text-intent-mlp vs fp32', 'image-encoder/mobilenet-v2-int8/mobilenet-v2-int8 vs mobilenet-v2'],
      "the INT8 MobileNetV2 is measured against the float MobileNetV2 it was quantized from, not the cloud's InceptionV3",
    );
    for (const row of report.models) {
      for (const key of ['batch1Ms', 'batch16Ms', 'fp32Batch1Ms', 'fp32Batch16Ms', 'sizeBytes', 'fp32SizeBytes'] as const) {
        assert.ok(Number.isFinite(row[key]) && row[key] > 0, `${row.id} ${key} = ${row[key]}`);
      }
      const graphs = findModel(catalog, row.id).variants;
      assert.equal(row.sizeBytes, statSync(resolveSource(graphs[row.variant]!.graphs[row.graph]!.source)).size);
      assert.equal(row.fp32SizeBytes, statSync(resolveSource(Object.values(graphs[row.reference]!.graphs)[0]!.source)).size);
      assert.ok(row.quality > 0.9 && row.quality <= 1 && row.fp32Quality > 0.9 && row.fp32Quality <= 1, `${row.id} quality ${row.quality} vs ${row.fp32Quality}`);
    }
    assert.equal(report.models.find((r) => r.id === 'audio-vad')!.fp32Quality, 1, 'agreement of FP32 with itself');
  });

  test('targets are judged from the rows: speed-up only where FP32 batch 1 takes 2 ms, size and quality bars always', () => {
    const text = report.models.find((r) => r.id === 'text-intent')!;
    const verdict = (prefix: string) => report.targets.find((v) => v.target.startsWith(prefix))!;
    assert.equal(verdict('text-intent int8-pruned: size').met, text.sizeBytes / text.fp32SizeBytes <= 0.3);
    assert.equal(verdict('text-intent int8-pruned: accuracy').met, text.fp32Quality - text.quality <= 0.01);
    assert.equal(verdict('audio-vad int8: frame agreement').met, report.models.find((r) => r.id === 'audio-vad')!.quality >= 0.99);
    assert.equal(verdict('image-encoder mobilenet-v2-int8: top-1 agreement with mobilenet-v2').met, report.models.find((r) => r.id === 'image-encoder')!.quality >= 0.99);
    for (const row of report.models) {
      const speed = report.targets.filter((v) => v.target.startsWith(`${row.id} ${row.variant} ${row.graph}: speed-up`));
      if (row.fp32Batch1Ms < 2) assert.deepEqual(speed.map((v) => v.met), [null]);
      else assert.deepEqual(speed.map((v) => typeof v.met), ['boolean', 'boolean']);
    }
  });

  test('the Markdown has the table, the verdicts, what quality means, how it was timed, the machine and the notes', () => {
    const md = quantMarkdown(report);
    assert.match(md, /^\| text-intent \| text-intent-mlp \| int8-pruned \(fp32\) \| [\d.]+ \([\d.]+\) \| [\d.]+× \|/m);
    assert.match(md, /^\| text-intent int8-pruned: size ≤ 30% of FP32 \| [\d.]+% \| (met|\*\*not met\*\*) \|$/m);
    assert.match(md, /\*\*audio-vad int8\*\*: frame agreement with the reference .* on 511 frames of models\/samples\/audio/);
    assert.match(md, /\*\*text-intent int8-pruned\*\*: intent accuracy, on 432 sentences of models\/text-intent\/data\/test\.jsonl/);
    assert.match(md, /## How latency was measured/);
    assert.ok(md.includes(report.run.machine), 'names the machine');
    assert.match(md, /^- unit test$/m);
  });

  test('quant.json holds the report as measured', () => {
    const written = writeQuantReport(report, mkdtempSync(path.join(os.tmpdir(), 'splitinfer-quant-')));
    assert.deepEqual(JSON.parse(readFileSync(written.json, 'utf8')), report);
    assert.equal(readFileSync(written.markdown, 'utf8'), quantMarkdown(report));
  });
});
