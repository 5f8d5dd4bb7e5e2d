/**
 * Imports the two nsfwjs Keras models into ONNX (fp32) with the toolchain's
 * tfjs importer, and prints for each what the catalog and the placement
 * policy will need: sha256, file size, parameters, operator counts, the
 * time the import took, and onnxruntime-node CPU latency per image at
 * batch 1 (one intra-op thread, as the edge runs).
 *
 * Run: npm run build:image-encoder
 * Writes models/image-encoder/mobilenet-v2.fp32.onnx and inception-v3.fp32.onnx
 * (not committed: built from the installed nsfwjs package).
 */
import { createHash } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { createLogger } from '../../shared/log.js';
import { openSession } from '../../shared/ort/session.js';
import { packageRoot } from '../../shared/paths.js';
import { float32 } from '../../shared/tensor.js';
import { summarizeModel } from '../toolchain/inspect.js';
import { importVerified } from '../toolchain/import-tfjs-command.js';
import { timeInterleaved } from '../toolchain/latency.js';
import { importOptions, nsfwjsModelDir, nsfwjsModels } from './nsfwjs-models.js';

const log = createLogger('build-image-encoder', 'warn');

for (const [id, spec] of Object.entries(nsfwjsModels)) {
  const started = performance.now();
  const { model, bytes, report } = await importVerified(nsfwjsModelDir(spec), importOptions(spec));
  const importMs = Math.round(performance.now() - started);
  const file = path.join(packageRoot, spec.onnxFile);
  writeFileSync(file, bytes);
  const ops = Object.entries(summarizeModel(model).ops).map(([op, n]) => `${op} ${n}`).join(', ');

  const session = await openSession(id, file, { providers: ['cpu'], intraOpThreads: 1 }, log);
  let latencyUs: number;
  try {
    const image = float32([1, spec.size, spec.size, 3], Float32Array.from({ length: spec.size * spec.size * 3 }, (_, i) => (i % 251) / 255));
    [latencyUs] = (await timeInterleaved([session], { input: image }, { rounds: 5, runsPerRound: 4, warmupRuns: 2 })) as [number];
  } finally {
    await session.close();
  }
  console.log(
    [
      `${id}: ${spec.onnxFile}`,
      `  sha256 ${createHash('sha256').update(bytes).digest('hex')}, ${bytes.length} bytes`,
      `  ${report.layers} layers, ${report.parameters} parameters; outputs ${report.outputs.map((o) => `${o.name} [${o.shape.join(', ')}]`).join(', ')}`,
      `  ops: ${ops}`,
      `  import ${importMs} ms; onnxruntime-node CPU, 1 thread, batch 1: ${(latencyUs / 1000).toFixed(1)} ms per image`,
    ].join('\n'),
  );
}
