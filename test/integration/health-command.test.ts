/**
 * `splitinfer health`, the container health check: it asks grpc.health.v1
 * Check once and exits 0 only for SERVING, over plaintext, verified TLS, or
 * (to loopback only) unverified TLS.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, test } from 'node:test';
import { ServingStatus } from '../../cloud/health.js';
import type { CloudServer } from '../../cloud/server.js';
import { packageRoot } from '../../shared/paths.js';
import { startTestCloud } from '../helpers/cloud.js';
import { makeTestPki, opensslMissing, type TestPki } from '../helpers/tls.js';

const run = promisify(execFile);
const cli = path.join(packageRoot, 'dist/shared/cli.js');

/** Runs `splitinfer health ARGS`: the exit code and what it printed. */
async function health(...args: string[]): Promise<{ code: number; out: string }> {
  try {
    const { stdout } = await run(process.execPath, [cli, 'health', '--timeout-ms', '3000', ...args]);
    return { code: 0, out: stdout };
  } catch (err) {
    const failed = err as { code: number; stdout: string; stderr: string };
    return { code: failed.code, out: failed.stdout + failed.stderr };
  }
}

describe('splitinfer health against a plaintext cloud', () => {
  let cloud: { server: CloudServer; address: string };
  before(async () => {
    cloud = await startTestCloud({ models: ['text-intent'] });
  });
  after(() => cloud?.server.drain(0));

  test('SERVING exits 0, for the server and for one of its models', async () => {
    assert.deepEqual(await health('--address', cloud.address), { code: 0, out: `${cloud.address}: SERVING\n` });
    const model = await health('--address', cloud.address, '--service', 'text-intent');
    assert.equal(model.code, 0);
    assert.match(model.out, /service 'text-intent' .*: SERVING/);
  });

  test('a service the server does not know exits 1 and names it', async () => {
    const { code, out } = await health('--address', cloud.address, '--service', 'no-such-model');
    assert.equal(code, 1);
    assert.match(out, /unknown service 'no-such-model'/);
  });

  test('asking in TLS a server that speaks plaintext exits 1 and says which transport it tried', async () => {
    const { code, out } = await health('--address', cloud.address, '--tls-no-verify');
    assert.equal(code, 1);
    assert.match(out, /no health answer .* over TLS as asked/s);
  });

  test('NOT_SERVING (draining) exits 1', async () => {
    cloud.server.health.setAll(ServingStatus.NOT_SERVING);
    assert.deepEqual(await health('--address', cloud.address), { code: 1, out: `${cloud.address}: NOT_SERVING\n` });
  });
});

describe('splitinfer health against a TLS cloud', { skip: opensslMissing }, () => {
  let pki: TestPki;
  let cloud: { server: CloudServer; address: string };
  before(async () => {
    pki = makeTestPki();
    cloud = await startTestCloud({ models: ['text-intent'], tls: { cert: pki.serverCert, key: pki.serverKey } });
  });
  after(async () => {
    await cloud?.server.drain(0);
    pki?.remove();
  });

  test('verifies the certificate against --tls-ca', async () => {
    assert.equal((await health('--address', cloud.address, '--tls-ca', pki.ca)).code, 0);
    const wrongCa = await health('--address', cloud.address, '--tls-ca', pki.otherCa);
    assert.equal(wrongCa.code, 1);
    assert.match(wrongCa.out, /no health answer/);
  });

  test('--tls-no-verify checks a container from inside it, and is refused for a remote address', async () => {
    assert.equal((await health('--address', cloud.address, '--tls-no-verify')).code, 0);
    const remote = await health('--address', 'cloud.example.com:8001', '--tls-no-verify');
    assert.equal(remote.code, 1);
    assert.match(remote.out, /--tls-no-verify: cloud\.example\.com:8001 is not a loopback address .* pass --tls-ca FILE instead/);
  });

  test('a missing CA file says which flag named it', async () => {
    const { code, out } = await health('--address', cloud.address, '--tls-ca', path.join(pki.dir, 'missing.crt'));
    assert.equal(code, 1);
    assert.match(out, /cannot read .*missing\.crt: ENOENT/);
  });
});
