import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import path from 'node:path';
import { Ajv } from 'ajv';
import { parse as parseYaml } from 'yaml';
import type { Modality } from './handlers/handler.js';
import { InferError } from './errors.js';
import { packageRoot } from './paths.js';

export interface FileRef {
  /** As written in the catalog: `npm:<package>/<path>` or a path relative to the package root. */
  source: string;
  sha256: string;
}

export interface CatalogVariant {
  /** KServe model name of each raw ONNX graph → its file. */
  graphs: Record<string, FileRef>;
  /** Measured share of inputs on which this variant's top-1 answer matches the fp32 reference's (the cloud's); the edge's `quality` floor reads it. */
  agreementWithReference?: number;
  /** The float variant this one was quantized from, which bench:quant measures it against (default fp32). */
  quantizedFrom?: string;
}

/** One level of a payload-shaping knob and the share of accuracy it is expected to cost. */
export interface ShapingLevel {
  value: number;
  /** Fraction (0–1) of the full-input accuracy lost at this level; the costs of combined knobs add up. */
  accuracyCost: number;
}

/** How the edge may shrink an encoded image before offloading it; the placement policy picks a combination. */
export interface PayloadShaping {
  /** Longest side in pixels after resizing (never enlarged). */
  maxSide: ShapingLevel[];
  jpegQuality: ShapingLevel[];
}

export interface CatalogModel {
  id: string;
  modality: Modality;
  task: string;
  handler: string;
  description: string;
  license?: string;
  assets: Record<string, FileRef>;
  variants: Record<string, CatalogVariant>;
  payloadShaping?: PayloadShaping;
}

export interface Catalog {
  models: CatalogModel[];
}

export const defaultCatalogPath = path.join(packageRoot, 'models', 'catalog.yaml');

const fileRefSchema = {
  type: 'object',
  required: ['source', 'sha256'],
  additionalProperties: false,
  properties: { source: { type: 'string', minLength: 1 }, sha256: { type: 'string', pattern: '^[0-9a-f]{64}$' } },
};

const shapingLevelsSchema = (minimum: number, maximum: number) => ({
  type: 'array',
  minItems: 1,
  items: {
    type: 'object',
    required: ['value', 'accuracyCost'],
    additionalProperties: false,
    properties: { value: { type: 'integer', minimum, maximum }, accuracyCost: { type: 'number', minimum: 0, maximum: 1 } },
  },
});

const catalogSchema = {
  type: 'object',
  required: ['models'],
  additionalProperties: false,
  properties: {
    models: {
      type: 'array',
      items: {
        type: 'object',
        required: ['id', 'modality', 'task', 'handler', 'variants'],
        additionalProperties: false,
        properties: {
          id: { type: 'string', pattern: '^[a-z0-9][a-z0-9-]*$' },
          modality: { enum: ['text', 'audio', 'image', 'video'] },
          task: { type: 'string' },
          handler: { type: 'string' },
          description: { type: 'string', default: '' },
          license: { type: 'string' },
          assets: { type: 'object', additionalProperties: fileRefSchema, default: {} },
          variants: {
            type: 'object',
            minProperties: 1,
            additionalProperties: {
              type: 'object',
              required: ['graphs'],
              additionalProperties: false,
              properties: {
                graphs: { type: 'object', minProperties: 1, additionalProperties: fileRefSchema },
                agreementWithReference: { type: 'number', minimum: 0, maximum: 1 },
                quantizedFrom: { type: 'string' },
              },
            },
          },
          payloadShaping: {
            type: 'object',
            required: ['maxSide', 'jpegQuality'],
            additionalProperties: false,
            properties: { maxSide: shapingLevelsSchema(32, 16384), jpegQuality: shapingLevelsSchema(1, 100) },
          },
        },
      },
    },
  },
} as const;

const validateCatalog = new Ajv({ allErrors: true, useDefaults: true }).compile(catalogSchema);

export function loadCatalog(file = defaultCatalogPath): Catalog {
  const doc: unknown = parseYaml(readFileSync(file, 'utf8'));
  if (!validateCatalog(doc)) {
    const problems = validateCatalog.errors!.map((e) => `${e.instancePath || '/'} ${e.message}`).join('; ');
    throw new Error(`model catalog ${file} is invalid: ${problems}`);
  }
  const catalog = doc as unknown as Catalog;
  // Model ids and graph names share one namespace (both are KServe model names); variants of one model reuse graph names,
  // and models may share a graph name for the very same file (video-encoder runs image-encoder's networks).
  const owner = new Map<string, { model: string; file?: string }>();
  for (const model of catalog.models) {
    for (const [name, variant] of Object.entries(model.variants)) {
      if (variant.quantizedFrom !== undefined && !model.variants[variant.quantizedFrom]) {
        throw new Error(`model catalog ${file}: ${model.id} variant ${name} is quantizedFrom '${variant.quantizedFrom}', which is not one of its variants (${Object.keys(model.variants).join(', ')})`);
      }
    }
    if (model.payloadShaping && model.modality !== 'image' && model.modality !== 'video') {
      throw new Error(`model catalog ${file}: ${model.id} declares payloadShaping, which only image and video models support (it resizes and re-encodes images and frames)`);
    }
    const claim = (name: string, graphFile?: string) => {
      const other = owner.get(name);
      if (other && other.model !== model.id && (graphFile === undefined || other.file !== graphFile)) {
        throw new Error(`model catalog ${file}: name '${name}' is used by both ${other.model} and ${model.id} (models share a graph name only for the same source and sha256)`);
      }
      if (!other) owner.set(name, { model: model.id, file: graphFile });
    };
    claim(model.id);
    for (const variant of Object.values(model.variants)) {
      for (const [graph, ref] of Object.entries(variant.graphs)) claim(graph, `${ref.source} ${ref.sha256}`);
    }
  }
  return catalog;
}

export function findModel(catalog: Catalog, id: string): CatalogModel {
  const model = catalog.models.find((m) => m.id === id);
  if (!model) throw new InferError('NOT_FOUND', `unknown model '${id}' (catalog has: ${catalog.models.map((m) => m.id).join(', ')})`);
  return model;
}

const requireFromHere = createRequire(import.meta.url);

/** Absolute path of a catalog file, without reading it. */
export function resolveSource(source: string): string {
  if (!source.startsWith('npm:')) return path.resolve(packageRoot, source);
  const spec = source.slice('npm:'.length);
  const parts = spec.split('/');
  const pkgName = spec.startsWith('@') ? parts.slice(0, 2).join('/') : parts[0]!;
  const rest = parts.slice(pkgName.split('/').length).join('/');
  // Resolve the package folder through node's lookup paths, not its exports map (which hides model files).
  for (const base of requireFromHere.resolve.paths(pkgName) ?? []) {
    const dir = path.join(base, pkgName);
    if (existsSync(path.join(dir, 'package.json'))) return path.join(dir, rest);
  }
  throw new InferError('FAILED_PRECONDITION', `model file ${source}: npm package ${pkgName} is not installed (run npm ci)`);
}

/** Resolves and sha256-checks a catalog file; a missing or altered file is a clear start-up error. */
export async function verifiedPath(ref: FileRef): Promise<string> {
  const file = resolveSource(ref.source);
  let bytes: Buffer;
  try {
    bytes = await readFile(file);
  } catch {
    throw new InferError('FAILED_PRECONDITION', `model file ${ref.source} is missing (looked at ${file}); reinstall with npm ci or rebuild it with the script under models/`);
  }
  const actual = createHash('sha256').update(bytes).digest('hex');
  if (actual !== ref.sha256) {
    throw new InferError('FAILED_PRECONDITION', `model file ${file} is corrupt or was replaced: sha256 ${actual}, catalog expects ${ref.sha256}`);
  }
  return file;
}
