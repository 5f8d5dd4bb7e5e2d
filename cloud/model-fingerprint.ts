import { stat } from 'node:fs/promises';
import { createHash } from 'node:crypto';
import { findModel, resolveSource, type Catalog } from '../shared/catalog.js';

/**
 * What a load of model `id` in `variants` reads, as one hash: the model's
 * catalog entry (sources and sha256s included) and the size and mtime of
 * every graph file. The poll mode reloads a model whose fingerprint moved;
 * the load itself then checks each file's sha256 against the catalog.
 */
export async function modelFingerprint(catalog: Catalog, id: string, variants: readonly string[]): Promise<string> {
  const model = findModel(catalog, id);
  const hash = createHash('sha256').update(JSON.stringify(model));
  for (const variant of variants) {
    for (const ref of Object.values(model.variants[variant]?.graphs ?? {})) {
      const file = resolveSource(ref.source);
      const info = await stat(file).catch(() => undefined);
      hash.update(`\n${file} ${info ? `${info.size} ${info.mtimeMs}` : 'missing'}`);
    }
  }
  return hash.digest('hex');
}
