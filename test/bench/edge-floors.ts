/**
 * The floors each edge benchmark case is read against, measured in the same
 * run on the same inputs:
 * - the handler alone: `LoadedModel.run`, its sessions on worker threads as
 *   the agent runs them;
 * - the handler with its sessions in this thread: the same code with the
 *   worker hop taken out (the difference is what the worker round trips cost);
 * - bare onnxruntime-node: only the `session.run` calls the handler made, with
 *   the same feeds, replayed on sessions of the same graph files;
 * - an MQTT echo device: answers on the agent's topics through the same broker
 *   at once, with no inference (echo-device.ts).
 */
import ort from 'onnxruntime-node';
import { verifiedPath, type CatalogModel } from '../../shared/catalog.js';
import type { HandlerContext } from '../../shared/handlers/handler.js';
import { loadModel } from '../../shared/loaded-model.js';
import type { Logger } from '../../shared/log.js';
import { runSequenceStepwise } from '../../shared/ort/sequence.js';
import type { OrtSession, RunResult } from '../../shared/ort/session.js';
import type { Tensor } from '../../shared/tensor.js';
import { percentile } from '../../shared/percentile.js';

export interface HandlerFloors {
  model: string;
  variant: string;
  handlerP50Ms: number;
  /** The handler with in-thread sessions: handlerP50Ms minus this is the worker hop. */
  handlerInThreadP50Ms: number;
  bareOrtP50Ms: number;
  /** session.run calls per input (a VAD clip is one per 32 ms frame). */
  sessionRuns: number;
}

interface RecordedRun {
  graph: string;
  feeds: Record<string, Tensor>;
}

const toOrt = (t: Tensor) => new ort.Tensor(t.type as 'float32', t.data as Float32Array, t.dims);

/** One ORT session per graph in this thread, with the options the worker uses (worker.ts). */
async function openInThread(paths: ReadonlyMap<string, string>, intraOpThreads: number): Promise<Map<string, ort.InferenceSession>> {
  const sessions = new Map<string, ort.InferenceSession>();
  for (const [graph, file] of paths) {
    sessions.set(graph, await ort.InferenceSession.create(file, { executionProviders: ['cpu'], intraOpNumThreads: intraOpThreads, interOpNumThreads: 1, graphOptimizationLevel: 'all' }));
  }
  return sessions;
}

/** An OrtSession over an in-thread session; `record` sees every run's feeds. */
function inThreadSession(name: string, session: ort.InferenceSession, record?: (feeds: Record<string, Tensor>) => void): OrtSession {
  return {
    name,
    provider: 'cpu',
    inputs: [],
    outputs: [],
    runSequence(steps, plan) {
      return runSequenceStepwise((feeds) => this.run(feeds), steps, plan);
    },
    async run(feeds): Promise<RunResult> {
      record?.(feeds);
      const started = performance.now();
      const results = await session.run(Object.fromEntries(Object.entries(feeds).map(([k, t]) => [k, toOrt(t)])));
      const computeUs = Math.round((performance.now() - started) * 1000);
      const outputs = Object.fromEntries(Object.entries(results).map(([k, v]) => [k, { type: v.type, dims: [...v.dims], data: v.data } as Tensor]));
      return { outputs, computeUs };
    },
    serving: () => true,
    onServingChange: () => () => undefined,
    close: async () => undefined,
  };
}

/** p50 of each variant over `runs` rounds; the variants take turns within a round, so load from elsewhere on the machine hits them alike. */
async function interleavedP50s(runs: number, variants: (() => Promise<unknown>)[]): Promise<number[]> {
  const times = variants.map(() => [] as number[]);
  for (let round = 0; round < runs + 2; round++) {
    for (const [i, once] of variants.entries()) {
      const started = performance.now();
      await once();
      // The first two rounds pay one-off costs (allocations, caches).
      if (round >= 2) times[i]!.push(performance.now() - started);
    }
  }
  return times.map((t) => Math.round(percentile(t, 0.5) * 100) / 100);
}

/** The three in-process floors of one model variant on one input, each the p50 of `runs` sequential runs. */
export async function measureHandlerFloors(model: CatalogModel, variant: string, input: Uint8Array, runs: number, intraOpThreads: number, log: Logger): Promise<HandlerFloors> {
  const loaded = await loadModel(model, variant, { providers: ['cpu'], intraOpThreads }, log);
  const graphPaths = new Map<string, string>();
  for (const [graph, ref] of Object.entries(model.variants[variant]!.graphs)) graphPaths.set(graph, await verifiedPath(ref));
  const assetPaths = new Map<string, string>();
  for (const [name, ref] of Object.entries(model.assets)) assetPaths.set(name, await verifiedPath(ref));
  const inThread = await openInThread(graphPaths, intraOpThreads);
  try {
    const recorded: RecordedRun[] = [];
    let recording = true;
    const ctx: HandlerContext = {
      graphs: [...inThread.keys()],
      session: (graph) => inThreadSession(graph, inThread.get(graph)!, (feeds) => recording && recorded.push({ graph, feeds })),
      assetPath: (name) => assetPaths.get(name)!,
    };
    await loaded.handler.run(input, ctx);
    recording = false;
    const ortFeeds = recorded.map((r) => ({ session: inThread.get(r.graph)!, feeds: Object.fromEntries(Object.entries(r.feeds).map(([k, t]) => [k, toOrt(t)])) }));
    const [handlerP50Ms, handlerInThreadP50Ms, bareOrtP50Ms] = await interleavedP50s(runs, [
      () => loaded.run(input),
      () => loaded.handler.run(input, ctx),
      async () => {
        for (const { session, feeds } of ortFeeds) await session.run(feeds);
      },
    ]);
    return { model: model.id, variant, handlerP50Ms, handlerInThreadP50Ms, bareOrtP50Ms, sessionRuns: recorded.length };
  } finally {
    await loaded.close();
    await Promise.all([...inThread.values()].map((s) => s.release()));
  }
}
