/**
 * The placement a response reports, built once from the decision and what
 * happened while the task ran (a fallback to the edge, a review by the
 * strategy, the cloud's budget), then frozen: work still running after the
 * task's deadline cannot change an answer already sent.
 */
import type { ErrorCode } from '../../shared/errors.js';
import type { Placement } from '../request.js';
import type { Site } from '../site.js';
import { referenceVariant } from '../tasks.js';
import type { PlacementDecision } from './constraints.js';
import { reason, renderWhy, type Reason } from './reasons.js';
import type { Review } from './strategy.js';

/** What happened to a placed task. */
export interface RunFacts {
  /** Where the answer came from (the last site tried, for a failure); null while it has run nowhere. */
  ran: Site | null;
  /** The cloud failed with this and the local variant ran instead. */
  fallback?: { code: ErrorCode; message: string; localVariant: string };
  review?: Review;
  /** How the deadline was split when the task went to the cloud. */
  budget?: { cloudBudgetMs: number; localReserveMs: number };
}

export function placementRecord(decision: PlacementDecision, facts: Readonly<RunFacts>): Placement {
  const reasons: Reason[] = [...decision.reasons];
  const { fallback, review } = facts;
  if (fallback) reasons.push(reason.fallback(fallback, fallback.localVariant));
  if (review) reasons.push(review.reason);
  return Object.freeze({
    decided: decision.site,
    ran: facts.ran,
    // The cloud serves the reference; the edge the variant the decision gave it.
    variant: facts.ran === 'cloud' ? referenceVariant : facts.ran === 'edge' ? (decision.edgeVariant ?? null) : null,
    reasons: Object.freeze(reasons.map((r) => r.code)),
    why: renderWhy(reasons),
    estimates: Object.freeze({ ...decision.estimates, ...facts.budget }),
    ...(fallback ? { fallback: Object.freeze({ code: fallback.code, message: fallback.message }) } : {}),
    ...(review ? { escalation: Object.freeze({ outcome: review.outcome, ...(review.error ? { error: review.error } : {}) }) } : {}),
  });
}
