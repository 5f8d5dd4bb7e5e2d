/**
 * Why a task ran where it did, as codes a program can act on, each with the
 * sentence a person reads. Every placement sentence is written here once;
 * strategies, the constraint step and the task runner only pick codes and
 * fill in the facts, and a placement's `why` is its reasons joined.
 */
import type { CloudHealth } from '../offload/circuit-breaker.js';
import type { Modality } from '../../shared/handlers/handler.js';
import type { Site } from '../site.js';

export type ReasonCode =
  /** Config `modalities.<m>.pin`. */
  | 'pinned'
  /** The request's `prefer`. */
  | 'preferred'
  /** Config `modalities.<m>.placement` (the `rules` strategy). */
  | 'configured'
  /** The circuit to the cloud is not closed. */
  | 'cloud-down'
  /** The modality has no local variant on this device. */
  | 'no-local-variant'
  /** The request's `quality` (or config `minAgreement`) rules the local variant out. */
  | 'quality-floor'
  /** The quality floor rules the light local variant out, and the edge runs the reference variant it holds (`localReference`). */
  | 'edge-reference'
  /** The device is configured to hold the reference variant but does not now (loading, or refused for memory or a failed load). */
  | 'reference-unavailable'
  /** A baseline strategy that always picks this side. */
  | 'fixed-side'
  /** `static-profile`: placed once from an offline profile. */
  | 'profiled'
  /** `adaptive`: the expected completion times decided. */
  | 'faster'
  | 'only-meets-deadline'
  | 'within-hysteresis'
  | 'no-estimate'
  | 'exploring'
  /** `adaptive`: the payload-shaping option chosen for a task sent to the cloud. */
  | 'shaped'
  /** Placed in the cloud, which failed; the edge answered. */
  | 'fallback-after-cloud-error'
  /** Ran on the edge; its result looked unsure, so the cloud was asked too. */
  | 'escalated-low-confidence';

export interface Reason {
  readonly code: ReasonCode;
  readonly text: string;
}

export const where = (site: Site) => (site === 'edge' ? 'on the edge' : 'in the cloud');
const localRun = (localVariant: string | undefined) => (localVariant ? ` (local ${localVariant} variant)` : '');

export const reason = {
  pinned: (modality: Modality, site: Site, overridesPrefer: boolean): Reason => ({
    code: 'pinned',
    text: `config pins ${modality} to the ${site}${overridesPrefer ? ` (over the request's preference for the ${site === 'edge' ? 'cloud' : 'edge'})` : ''}`,
  }),
  preferred: (modality: Modality, site: Site, localVariant?: string): Reason => ({
    code: 'preferred',
    text: `the request prefers the ${site} for ${modality}${site === 'edge' ? localRun(localVariant) : ''}`,
  }),
  configured: (modality: Modality, site: Site, localVariant?: string): Reason => ({
    code: 'configured',
    text: `config places ${modality} ${where(site)}${site === 'edge' ? localRun(localVariant) : ''}`,
  }),
  cloudDown: (cloud: CloudHealth, localVariant: string | undefined): Reason => ({
    code: 'cloud-down',
    text: `the cloud is unavailable (circuit ${cloud.state}${cloud.lastError ? `: ${cloud.lastError}` : ''}), so ${
      localVariant ? `it runs on the edge with the local ${localVariant} variant` : 'it fails fast with UNAVAILABLE'
    }`,
  }),
  noLocalVariant: (modality: Modality): Reason => ({ code: 'no-local-variant', text: `${modality} has no local variant, so it runs in the cloud` }),
  /** `agreement`: the local variant's measured top-1 agreement with the reference; undefined when not measured. */
  qualityFloor: (task: string, floor: 'best' | number, localVariant: string, agreement: number | undefined): Reason => ({
    code: 'quality-floor',
    text:
      floor === 'best'
        ? `the quality floor for ${task} is best: only the reference model may answer, not the local ${localVariant} variant, so it runs in the cloud`
        : `the quality floor for ${task} is ${floor} top-1 agreement with the reference model, which the local ${localVariant} variant does not meet (${
            agreement === undefined ? 'no measured agreement' : `measured ${agreement}`
          }), so it runs in the cloud`,
  }),
  edgeReference: (task: string, floor: 'best' | number, lightVariant: string, reference: string): Reason => ({
    code: 'edge-reference',
    text: `the quality floor for ${task} is ${floor === 'best' ? 'best' : `${floor} top-1 agreement`}, which rules out the local ${lightVariant} variant, so the edge runs the reference ${reference} variant it holds`,
  }),
  referenceUnavailable: (task: string, reference: string, why: string): Reason => ({
    code: 'reference-unavailable',
    text: `${task} may run the reference ${reference} variant on this device (localReference), but the device does not hold it now: ${why}`,
  }),
  fixedSide: (strategy: string, modality: Modality, site: Site, localVariant?: string): Reason => ({
    code: 'fixed-side',
    text: `${strategy} runs ${modality} ${where(site)}${site === 'edge' ? localRun(localVariant) : ''}`,
  }),
  profiled: (text: string): Reason => ({ code: 'profiled', text }),
  /** `adaptive`'s comparisons; the text carries the numbers. */
  estimated: (code: Extract<ReasonCode, 'faster' | 'only-meets-deadline' | 'within-hysteresis' | 'no-estimate' | 'exploring' | 'shaped'>, text: string): Reason => ({ code, text }),
  fallback: (failure: { code: string; message: string }, localVariant: string): Reason => ({
    code: 'fallback-after-cloud-error',
    text: `the cloud failed (${failure.code}: ${failure.message}), so it was retried on the edge with the local ${localVariant} variant`,
  }),
  escalated: (why: string, outcome: string): Reason => ({ code: 'escalated-low-confidence', text: `${why}, ${outcome}` }),
};

/** A placement's `why`: its reasons in order. */
export const renderWhy = (reasons: readonly Reason[]) => reasons.map((r) => r.text).join('; ');
