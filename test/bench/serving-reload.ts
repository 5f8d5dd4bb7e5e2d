/**
 * `bench:serving`'s reload figure: a `splitinfer cloud` child serving
 * text-intent with repository control on, a closed loop of requests over
 * gRPC from this process, and `reloads` RepositoryModelLoad calls one after
 * another while the loop runs. Every request must be answered: a reload
 * warms the new version beside the old one and swaps them atomically.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { stringify } from 'yaml';
import { startCloudChild } from '../../edge/local-stack.js';
import { GRPCInferenceService } from '../../shared/gen/inference/grpc_service_pb.js';
import { callUnary } from '../../shared/grpc-service.js';
import { InferenceClient } from '../../shared/inference-client.js';
import { percentile } from '../../shared/percentile.js';
import { encodeInferInputs } from '../../shared/tensor-codec.js';
import { bytesTensor } from '../../shared/tensor.js';
import { closedLoopUntil, summarize } from './serving-load.js';

export interface ReloadResult {
  model: string;
  reloads: number;
  /** Requests sent while the reloads ran, and how many of them failed. */
  requests: number;
  failed: number;
  /** RepositoryModelLoad round trip (load, warm-up, swap), as the caller saw it. */
  reloadMsP50: number;
  reloadMsMax: number;
  concurrency: number;
  p95Ms: number;
  /** The first few failure messages, when there were any. */
  failures: string[];
}

const sentences = ['I forgot my password and cannot log in', 'my card payment failed twice', 'when are the exam grades published', '成绩什么时候出来', 'パスワードを忘れました'];

export async function reloadUnderLoad(reloads: number, providers: string[]): Promise<ReloadResult> {
  const concurrency = 4;
  const dir = mkdtempSync(path.join(os.tmpdir(), 'bench-reload-'));
  const file = path.join(dir, 'cloud.yaml');
  writeFileSync(file, stringify({ models: ['text-intent'], providers, repository: { control: true } }));
  const child = await startCloudChild({ extraArgs: ['--config', file] });
  const client = new InferenceClient(child.address);
  try {
    const reloadMs: number[] = [];
    const reloading = (async () => {
      // Load before the first reload, and between reloads, so each swap finds requests in flight.
      await new Promise((r) => setTimeout(r, 500));
      for (let i = 0; i < reloads; i++) {
        const started = performance.now();
        await callUnary(client.grpc, GRPCInferenceService.method.repositoryModelLoad, { modelName: 'text-intent' }, { deadline: Date.now() + 60_000 });
        reloadMs.push(performance.now() - started);
        await new Promise((r) => setTimeout(r, 100));
      }
    })();
    const samples = await closedLoopUntil(client.grpc, concurrency, reloading, (i) => ({
      modelName: 'text-intent',
      id: `reload-${i}`,
      ...encodeInferInputs({ input: bytesTensor([new TextEncoder().encode(`${sentences[i % sentences.length]} #${i}`)]) }),
    }));
    await reloading;
    const failures = samples.filter((s) => s.failed).map((s) => s.failed!);
    return {
      model: 'text-intent',
      reloads: reloadMs.length,
      requests: samples.length,
      failed: failures.length,
      reloadMsP50: Math.round(percentile(reloadMs, 0.5)),
      reloadMsMax: Math.round(Math.max(...reloadMs)),
      concurrency,
      p95Ms: summarize(samples).p95Ms,
      failures: failures.slice(0, 5),
    };
  } finally {
    client.close();
    await child.stop();
  }
}
