/**
 * The poll mode (config `repository.pollIntervalS`), Triton's
 * `--model-control-mode=poll` for the catalog: every interval, each loaded
 * model whose catalog entry or graph files changed (model-fingerprint.ts) is
 * reloaded beside the running one. A failed reload is logged with its reason
 * and not retried until something changes again.
 */
import { loadCatalog } from '../shared/catalog.js';
import type { Logger } from '../shared/log.js';
import type { CloudConfig } from './config.js';
import { modelFingerprint } from './model-fingerprint.js';
import type { ModelRepository } from './repository.js';

/** Starts polling; the returned function stops it and resolves once a reload under way has ended. */
export function pollRepository(repository: ModelRepository, config: CloudConfig, log: Logger): () => Promise<void> {
  const failed = new Map<string, string>();
  let stopped = false;
  let tick: Promise<void> = Promise.resolve();
  let timer: NodeJS.Timeout | undefined;

  async function check(): Promise<void> {
    let catalog;
    try {
      catalog = loadCatalog(config.catalog || undefined);
    } catch (err) {
      log.warn({ err: (err as Error).message }, 'poll: catalog unreadable; models keep serving, next check in the next interval');
      return;
    }
    for (const { id, fingerprint, variants } of repository.loadedModels()) {
      if (stopped) return;
      const now = await modelFingerprint(catalog, id, variants).catch((err: Error) => `unreadable: ${err.message}`);
      if (now === fingerprint || now === failed.get(id)) continue;
      log.info({ model: id }, 'poll: model changed; reloading');
      try {
        await repository.load(id);
        failed.delete(id);
      } catch {
        // repository.load logged why; try again only once the files change again.
        failed.set(id, now);
      }
    }
  }

  const schedule = () => {
    timer = setTimeout(() => {
      tick = check().finally(() => stopped || schedule());
    }, config.repository.pollIntervalS * 1000);
  };
  schedule();
  return async () => {
    stopped = true;
    clearTimeout(timer);
    await tick;
  };
}
