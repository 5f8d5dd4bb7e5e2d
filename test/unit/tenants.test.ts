/** Tenants' quotas on arrival (rate, concurrency), their queue tickets and bounded metric labels, on a fake clock. */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { InferError } from '../../shared/errors.js';
import { Tenants, type TenantsConfig } from '../../cloud/tenants.js';

function tenantsWith(tenants: TenantsConfig['tenants']) {
  let ms = 0;
  const config: TenantsConfig = { defaultTenant: 'default', tenants, apiKeys: [{ tenant: 'keyed' }], mtlsTenants: { 'cam-7': 'cameras' } };
  return { tenants: new Tenants(config, undefined, () => ms), advance: (by: number) => (ms += by) };
}

const refusal = (admit: () => unknown): InferError => {
  try {
    admit();
  } catch (err) {
    assert.ok(err instanceof InferError);
    return err;
  }
  assert.fail('expected a refusal');
};

describe('tenants', () => {
  test('a tenant over its rate is refused with the wait until its next token, and let in after it', () => {
    const { tenants, advance } = tenantsWith({ acme: { requestsPerSecond: 2, burst: 1 } });
    tenants.admit('acme', () => 5)();
    const err = refusal(() => tenants.admit('acme', () => 5));
    assert.equal(err.code, 'RESOURCE_EXHAUSTED');
    assert.equal(err.retryAfterMs, 500);
    assert.match(err.message, /^tenant acme is over its request rate \(2\/s, burst 1\); retry after 500 ms, or raise auth\.tenants\.acme\.requestsPerSecond$/);
    advance(500);
    tenants.admit('acme', () => 5)();
    assert.doesNotThrow(() => tenants.admit('unlimited', () => 5), 'a tenant without settings has no quota');
  });

  test('a tenant at maxConcurrent is refused with the queue\'s hint until one of its requests is answered', () => {
    const { tenants } = tenantsWith({ acme: { maxConcurrent: 2 } });
    const first = tenants.admit('acme', () => 40);
    tenants.admit('acme', () => 40);
    const err = refusal(() => tenants.admit('acme', () => 40));
    assert.equal(err.retryAfterMs, 40);
    assert.match(err.message, /tenant acme already has 2 requests in the server \(its maxConcurrent 2\); retry after ~40 ms/);
    first();
    first();
    tenants.admit('acme', () => 40);
    assert.throws(() => tenants.admit('acme', () => 40), /maxConcurrent/, 'releasing twice frees one place, not two');
  });

  test("a request's priority is held to its tenant's best level; the tenant's level is its default", () => {
    const { tenants } = tenantsWith({ silver: { priority: 2 }, open: {} });
    assert.deepEqual(tenants.ticket('silver', 1), { tenant: 'silver', priority: 2 });
    assert.deepEqual(tenants.ticket('silver', 3), { tenant: 'silver', priority: 3 });
    assert.deepEqual(tenants.ticket('silver'), { tenant: 'silver', priority: 2 });
    assert.deepEqual(tenants.ticket('open', 1), { tenant: 'open', priority: 1 });
    assert.deepEqual(tenants.ticket('open'), { tenant: 'open', priority: 0 }, "0: the model's default level");
  });

  test('anonymous callers are the default tenant; metric labels are the configured tenants, anything else "other"', () => {
    const { tenants } = tenantsWith({ acme: { weight: 3, maxQueued: 4 } });
    assert.equal(tenants.tenantOf({}), 'default');
    assert.equal(tenants.tenantOf({ tenant: 'acme' }), 'acme');
    assert.deepEqual(['acme', 'keyed', 'cameras', 'default', 'made-up'].map((t) => tenants.label(t)), ['acme', 'keyed', 'cameras', 'default', 'other']);
    assert.deepEqual([tenants.weightOf('acme'), tenants.maxQueuedOf('acme'), tenants.weightOf('keyed'), tenants.maxQueuedOf('keyed')], [3, 4, 1, Infinity]);
  });
});
