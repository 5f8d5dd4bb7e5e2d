import type { ErrorCode } from '../errors.js';
import type { Tensor, TensorMeta } from '../tensor.js';

/** Messages between an OrtSession (main thread) and its worker. */
export interface LoadRequest {
  modelPath: string;
  providers: string[];
  intraOpThreads: number;
  interOpThreads: number;
}

export type ToWorker =
  | { op: 'run'; id: number; feeds: Record<string, Tensor> }
  | { op: 'run-sequence'; id: number; steps: Record<string, Tensor>[]; carry: Record<string, string>; keep: string[] }
  | { op: 'close' };

export type FromWorker =
  | {
      op: 'loaded';
      provider: string;
      fallbacks: { provider: string; reason: string }[];
      inputs: TensorMeta[];
      outputs: TensorMeta[];
    }
  | { op: 'load-failed'; message: string }
  | { op: 'result'; id: number; outputs: Record<string, Tensor>; computeUs: number }
  | { op: 'sequence-result'; id: number; outputs: Record<string, Tensor>[]; computeUs: number }
  | { op: 'error'; id: number; code: ErrorCode; message: string };
