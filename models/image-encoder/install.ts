/**
 * Makes sure the image-encoder graphs the catalog lists exist: each one is
 * imported from the installed nsfwjs package when it is missing or differs
 * from the catalog's sha256 (the import is deterministic, so a fresh build
 * matches). Run by `npm run prepare`, so `npm ci` leaves a servable tree;
 * `npm run build:image-encoder` rebuilds and measures them.
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { findModel, loadCatalog } from '../../shared/catalog.js';
import { packageRoot } from '../../shared/paths.js';
import { importVerified } from '../toolchain/import-tfjs-command.js';
import { importOptions, nsfwjsModelDir, nsfwjsModels } from './nsfwjs-models.js';

const sha256 = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');

const catalogGraphs = Object.values(findModel(loadCatalog(), 'image-encoder').variants).flatMap((variant) => Object.values(variant.graphs));
for (const [id, spec] of Object.entries(nsfwjsModels)) {
  const expected = catalogGraphs.find((graph) => graph.source === spec.onnxFile)?.sha256;
  if (!expected) throw new Error(`models/catalog.yaml lists no image-encoder graph at ${spec.onnxFile}`);
  const file = path.join(packageRoot, spec.onnxFile);
  if (existsSync(file) && sha256(readFileSync(file)) === expected) continue;
  const { bytes } = await importVerified(nsfwjsModelDir(spec), importOptions(spec));
  const actual = sha256(bytes);
  if (actual !== expected) {
    throw new Error(`imported ${id} has sha256 ${actual}, the catalog expects ${expected}: a different nsfwjs version or importer — rebuild with npm run build:image-encoder and update models/catalog.yaml`);
  }
  writeFileSync(file, bytes);
  console.log(`image-encoder: wrote ${spec.onnxFile} (${bytes.length} bytes) from ${spec.source}`);
}
