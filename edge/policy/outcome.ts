/** What a placed task measured, on whichever site ran it: the estimators and strategies learn from it. */
import type { OffloadAnswer } from '../offload/offload-client.js';
import type { Site, TaskTimings } from '../request.js';
import type { InputSize } from './input-size.js';

/** What the estimators and a strategy's `observe` learn from: a placed task's outcome and what each site measured. */
export interface PlacementOutcome {
  site: Site;
  timings: TaskTimings;
  failed: boolean;
  inputSize: InputSize;
  /** Per item, time inside the local model, when the edge ran the task. */
  localItemComputeMs?: number[];
  /** When the cloud answered. */
  cloudAnswer?: CloudMeasurement;
  /** How long the cloud was waited for when it did not answer within its budget. */
  cloudTimeoutMs?: number;
  /** The uplink wait predicted when the task was sent: part of its link time that is neither RTT nor its own upload. */
  uplinkWaitMs?: number;
}

/** What the offload client measured for an answered task (a video chunk's items share one request). */
export type CloudMeasurement = Pick<OffloadAnswer, 'sentBytes' | 'linkMs' | 'queueMs' | 'computeMs' | 'prepareMs' | 'shaped' | 'items'>;

