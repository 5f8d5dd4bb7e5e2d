/**
 * The agent's Prometheus metrics (served by shared/metrics.ts's `serveMetrics`
 * when config `metricsPort` is set): what each task did, how long requests
 * and local model runs took, and, read at scrape time, the state the policy
 * decides from (circuit, link estimates) and the ingress's backlog and
 * journal. Labels take values from small fixed sets (modalities, sites,
 * error codes, configured models), so a client cannot grow the registry.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { IngressCounts } from './ingress/mqtt-ingress.js';
import type { CircuitState } from './offload/circuit-breaker.js';
import type { LinkSnapshot } from './policy/link-estimator.js';
import type { AgentResponse } from './request.js';

export interface EdgeMetrics {
  readonly registry: Registry;
  /** Tasks by modality, where they ran (`none`: nowhere) and outcome: `ok`, `fallback` (the cloud failed, the edge answered) or the error code. */
  readonly tasks: Counter<'modality' | 'placement' | 'outcome'>;
  readonly taskSeconds: Histogram<'modality' | 'placement'>;
  /** A whole request in the agent, from arrival to its merged answer. */
  readonly requestSeconds: Histogram;
  /** One local model run (pre-processing, ONNX Runtime, post-processing), without the wait for the model. */
  readonly localRunSeconds: Histogram<'model' | 'variant'>;
}

/** What the state gauges read at scrape time. */
export interface EdgeStateSources {
  circuit(): CircuitState;
  link(): LinkSnapshot;
  /** Requests waiting for a run slot or running. */
  inFlight(): number;
  journal(): { entries: number; fileBytes: number };
  /** The ingress's counts (mqtt-ingress.ts IngressCounts). */
  ingress(): IngressCounts;
}

const latencyBuckets = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];
const circuitStates: readonly CircuitState[] = ['closed', 'half-open', 'open'];
const ingressEvents: readonly [string, keyof IngressCounts][] = [
  ['received', 'received'],
  ['answered', 'answered'],
  ['invalid', 'invalid'],
  ['refused_reply', 'refusedReplies'],
  ['duplicate', 'duplicates'],
  ['replayed', 'replayed'],
  ['joined', 'joined'],
  ['recovered', 'recovered'],
  ['expired', 'expired'],
  ['over_requester_limit', 'overRequesterLimit'],
];

/** `device` labels every series, so a fleet's series stay apart whatever the scrape config calls the target. */
export function createEdgeMetrics(deviceId: string): EdgeMetrics {
  const registry = new Registry();
  registry.setDefaultLabels({ device: deviceId });
  collectDefaultMetrics({ register: registry });
  return {
    registry,
    tasks: new Counter({
      name: 'splitinfer_edge_tasks_total',
      help: 'Tasks (one per modality of a request) by modality, where they ran and outcome',
      labelNames: ['modality', 'placement', 'outcome'],
      registers: [registry],
    }),
    taskSeconds: new Histogram({
      name: 'splitinfer_edge_task_duration_seconds',
      help: 'Time of a task from its request’s arrival to its answer, by modality and where it ran',
      labelNames: ['modality', 'placement'],
      buckets: latencyBuckets,
      registers: [registry],
    }),
    requestSeconds: new Histogram({ name: 'splitinfer_edge_request_duration_seconds', help: 'Time of a request in the agent, from arrival to its answer', buckets: latencyBuckets, registers: [registry] }),
    localRunSeconds: new Histogram({
      name: 'splitinfer_edge_local_run_seconds',
      help: 'One local model run (pre-processing, ONNX Runtime, post-processing), without queueing',
      labelNames: ['model', 'variant'],
      buckets: latencyBuckets,
      registers: [registry],
    }),
  };
}

/** Counts a request's answer: one task per modality it names, and the request-level error, if any. */
export function recordResponse(metrics: EdgeMetrics, response: AgentResponse, totalMs: number): void {
  metrics.requestSeconds.observe(totalMs / 1000);
  const modalities = new Set([...Object.keys(response.placement), ...Object.keys(response.errors ?? {})]) as Set<keyof AgentResponse['placement'] | 'request'>;
  for (const modality of modalities) {
    const placement = modality === 'request' ? undefined : response.placement[modality];
    const site = placement?.ran ?? 'none';
    const error = response.errors?.[modality];
    const outcome = error ? error.code : placement?.fallback ? 'fallback' : 'ok';
    metrics.tasks.inc({ modality, placement: site, outcome });
    const timings = modality === 'request' ? undefined : response.timings[modality];
    if (timings) metrics.taskSeconds.observe({ modality, placement: site }, timings.totalMs / 1000);
  }
}

/** Gauges of the agent's state, read from `sources` at each scrape. */
export function registerEdgeState(metrics: EdgeMetrics, sources: EdgeStateSources): void {
  const registers = [metrics.registry];
  new Gauge({
    name: 'splitinfer_edge_cloud_circuit_state',
    help: 'The circuit breaker to the cloud tier: 1 for its current state (closed: offloading; open: the cloud is unavailable)',
    labelNames: ['state'],
    registers,
    collect() {
      const current = sources.circuit();
      for (const state of circuitStates) this.set({ state }, state === current ? 1 : 0);
    },
  });
  // Unknown estimates (no sample yet) are left out rather than shown as 0, which would read as an instant link.
  new Gauge({
    name: 'splitinfer_edge_cloud_rtt_seconds',
    help: 'Estimated round trip to the cloud tier (mean of recent small offloads and probes)',
    registers,
    collect() {
      const { rttMs } = sources.link();
      if (rttMs === undefined) this.reset();
      else this.set(rttMs / 1000);
    },
  });
  new Gauge({
    name: 'splitinfer_edge_uplink_bytes_per_second',
    help: 'Estimated uplink bandwidth to the cloud tier, from recent large offloads',
    registers,
    collect() {
      const { uplinkMbps } = sources.link();
      if (uplinkMbps === undefined) this.reset();
      else this.set((uplinkMbps * 1e6) / 8);
    },
  });
  // Counted by the ingress, read here: messages refused before the agent saw them are only known there.
  new Counter({
    name: 'splitinfer_edge_ingress_messages_total',
    help: 'Messages on the request topic by what became of them: received, answered, invalid (refused, answered with an error), refused_reply (not answered), duplicate, replayed, joined, recovered, expired',
    labelNames: ['event'],
    registers,
    collect() {
      const counts = sources.ingress();
      this.reset();
      for (const [event, key] of ingressEvents) this.inc({ event }, counts[key]);
    },
  });
  new Gauge({
    name: 'splitinfer_edge_requests_in_flight',
    help: 'Requests waiting for a run slot or running (more wait unacknowledged at the broker)',
    registers,
    collect() {
      this.set(sources.inFlight());
    },
  });
  new Gauge({
    name: 'splitinfer_edge_journal_bytes',
    help: 'Size of the request journal file in the state folder',
    registers,
    collect() {
      this.set(sources.journal().fileBytes);
    },
  });
  new Gauge({
    name: 'splitinfer_edge_journal_entries',
    help: 'Requests the journal keeps (unanswered, and answers kept for repeats)',
    registers,
    collect() {
      this.set(sources.journal().entries);
    },
  });
}
