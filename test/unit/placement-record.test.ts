/**
 * The placement record a response reports: built once from the decision and
 * what happened (fallback, review, budget), with `why` rendered from its
 * reason codes, and frozen.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { placementRecord } from '../../edge/policy/placement-record.js';
import { reason } from '../../edge/policy/reasons.js';
import { placer, unreachableCloud } from '../helpers/placement.js';

describe('placement record', () => {
  test('a plain decision: decided and ran agree, reasons are codes, why is their sentence, and nothing can change it', () => {
    const decision = placer('rules').place('text');
    const record = placementRecord(decision, { ran: 'edge' });
    assert.deepEqual(record, {
      decided: 'edge',
      ran: 'edge',
      variant: 'fp32',
      reasons: ['configured'],
      why: 'config places text on the edge (local fp32 variant)',
      estimates: { rule: 'config', wanted: 'edge', localVariant: 'fp32' },
    });
    assert.ok(Object.isFrozen(record) && Object.isFrozen(record.reasons) && Object.isFrozen(record.estimates));
    assert.throws(() => ((record as { ran: string }).ran = 'cloud'), TypeError);
  });

  test('a cloud failure retried on the edge is an explicit fallback, with its code appended to the reasons and the budget in the estimates', () => {
    const decision = placer('rules').place('image');
    const record = placementRecord(decision, {
      ran: 'edge',
      fallback: { code: 'DEADLINE_EXCEEDED', message: 'the cloud tier did not answer p1/image#1 within 900 ms', localVariant: 'int8' },
      budget: { cloudBudgetMs: 900, localReserveMs: 100 },
    });
    assert.deepEqual([record.decided, record.ran, record.reasons], ['cloud', 'edge', ['configured', 'fallback-after-cloud-error']]);
    assert.deepEqual(record.fallback, { code: 'DEADLINE_EXCEEDED', message: 'the cloud tier did not answer p1/image#1 within 900 ms' });
    assert.equal(record.why, 'config places image in the cloud; the cloud failed (DEADLINE_EXCEEDED: the cloud tier did not answer p1/image#1 within 900 ms), so it was retried on the edge with the local int8 variant');
    assert.deepEqual([record.estimates.cloudBudgetMs, record.estimates.localReserveMs], [900, 100]);
  });

  test('a review by the strategy is an explicit escalation', () => {
    const decision = placer('confidence').place('image');
    const review = { reason: reason.escalated('the edge result looked unsure', 'but the cloud failed (UNAVAILABLE: down)'), outcome: 'cloud-failed' as const, error: { code: 'UNAVAILABLE', message: 'down' } };
    const record = placementRecord(decision, { ran: 'edge', review });
    assert.deepEqual(record.reasons, ['fixed-side', 'escalated-low-confidence']);
    assert.deepEqual(record.escalation, { outcome: 'cloud-failed', error: { code: 'UNAVAILABLE', message: 'down' } });
  });

  test('a task with nowhere to run reports where it was placed and that it ran nowhere', () => {
    const decision = placer('adaptive').place('video', { cloud: unreachableCloud, localVariant: null });
    const record = placementRecord(decision, { ran: null });
    assert.deepEqual([record.decided, record.ran, record.variant, record.reasons], ['cloud', null, null, ['no-local-variant', 'cloud-down']]);
  });
});
