import type { CatalogModel } from './catalog.js';
import { verifiedPath } from './catalog.js';
import { InferError } from './errors.js';
import { getHandler, type HandlerContext, type HandlerOutput, type ModelHandler } from './handlers/handler.js';
import './handlers/index.js';
import type { Logger } from './log.js';
import { batchingSession, whyNotBatchable, type BatchingOptions } from './ort/batching-session.js';
import { openSession, type OrtSession, type SessionOptions } from './ort/session.js';
import { SessionShare } from './ort/session-share.js';

/** One variant of one catalog model with its sessions open and warmed up: what both tiers serve from. */
export interface LoadedModel {
  readonly model: CatalogModel;
  readonly variant: string;
  readonly handler: ModelHandler;
  /** Sessions by graph name. */
  readonly sessions: ReadonlyMap<string, OrtSession>;
  /** Graphs whose runs go through a dynamic batcher (loadModel's `batching`). */
  readonly batchedGraphs: readonly string[];
  /** What the handler's functions take: for calls past `run`, e.g. encoding decoded video frames with encodeChunk (handlers/video-encoder.ts). */
  readonly context: HandlerContext;
  /** The handler's run, its result seen as the JSON record both tiers pass on (the handler file has its type). */
  run(input: Uint8Array): Promise<HandlerOutput<Record<string, unknown>>>;
  /** Every session's worker is up (one restarting after a crash makes the whole model not serving). */
  serving(): boolean;
  close(): Promise<void>;
}

/**
 * Opens the variant's graphs, each on its own session, or on a lease from
 * `opener` when it is a SessionShare (a graph another model already runs
 * is not loaded twice). With `batching`, every graph with a free leading
 * dimension on all its tensors runs behind a dynamic batcher; the others
 * run alone (logged).
 */
export async function loadModel(model: CatalogModel, variant: string, opener: SessionOptions | SessionShare, log: Logger, batching?: BatchingOptions): Promise<LoadedModel> {
  const spec = model.variants[variant];
  if (!spec) {
    throw new InferError('NOT_FOUND', `model ${model.id} has no variant '${variant}' (catalog has: ${Object.keys(model.variants).join(', ')})`);
  }
  const handler = getHandler(model.handler);
  const assetPaths = new Map<string, string>();
  for (const [name, ref] of Object.entries(model.assets)) assetPaths.set(name, await verifiedPath(ref));
  const sessions = new Map<string, OrtSession>();
  const batchedGraphs: string[] = [];
  try {
    for (const [graph, ref] of Object.entries(spec.graphs)) {
      const session = opener instanceof SessionShare ? await opener.lease(graph, ref) : await openSession(graph, await verifiedPath(ref), opener, log);
      const alone = batching && whyNotBatchable(session);
      if (alone) log.info({ model: model.id, graph, why: alone }, 'graph runs alone: it cannot batch');
      if (batching && !alone) batchedGraphs.push(graph);
      sessions.set(graph, batching && !alone ? batchingSession(session, batching) : session);
    }
  } catch (err) {
    await Promise.all([...sessions.values()].map((s) => s.close()));
    throw err;
  }
  const ctx: HandlerContext = {
    graphs: [...sessions.keys()],
    session(graph) {
      const session = sessions.get(graph);
      if (!session) throw new Error(`model ${model.id}/${variant} has no graph '${graph}' in the catalog`);
      return session;
    },
    assetPath(name) {
      const file = assetPaths.get(name);
      if (!file) throw new Error(`model ${model.id} has no asset '${name}' in the catalog`);
      return file;
    },
  };
  const loaded: LoadedModel = {
    model,
    variant,
    handler,
    sessions,
    batchedGraphs,
    context: ctx,
    run: (input) => handler.run(input, ctx) as Promise<HandlerOutput<Record<string, unknown>>>,
    serving: () => [...sessions.values()].every((s) => s.serving()),
    close: async () => {
      await Promise.all([...sessions.values()].map((s) => s.close()));
    },
  };
  const started = performance.now();
  await loaded.run(await handler.warmupInput());
  log.info({ model: model.id, variant, warmupMs: Math.round(performance.now() - started) }, 'model warmed up');
  return loaded;
}
