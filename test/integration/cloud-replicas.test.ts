/**
 * Two `splitinfer cloud` processes behind one name, as the headless Service
 * gives them: the edge's offload client keeps a connection to each (grpc-js
 * round_robin), its one stream rides one replica, and when that replica is
 * stopped the way Kubernetes stops a pod (SIGTERM: the cloud drains), what
 * was in flight fails as UNAVAILABLE — which the agent runs locally — and
 * the following requests are answered by the other replica.
 *
 * The name: both replicas listen on the same port, one on 127.0.0.1 and one
 * on 127.0.0.2 (Linux answers on all of 127/8), and the edge dials
 * `ipv4:127.0.0.1:P,127.0.0.2:P`. That target hands grpc-js the same address
 * list a DNS name with two A records gives its dns resolver, to the same
 * round_robin policy; only where the list comes from differs, and a test
 * cannot add records to this machine's resolver.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { loadEdgeConfig } from '../../edge/config.js';
import { freeLoopbackPort, startCloudChild, type CloudChild } from '../../edge/local-stack.js';
import { OffloadClient } from '../../edge/offload/offload-client.js';
import { InferError } from '../../shared/errors.js';
import { createLogger } from '../../shared/log.js';

const log = createLogger('test-replicas', process.env.SPLITINFER_LOG_LEVEL ?? 'silent');
const hosts = ['127.0.0.1', '127.0.0.2'] as const;

interface Replica {
  host: string;
  child: CloudChild;
  metricsPort: number;
}

/** Successful text-intent requests a replica has answered, from its /metrics. */
async function answered(replica: Replica): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${replica.metricsPort}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith('nv_inference_request_success{') && l.includes('model="text-intent"'));
  return line ? Number(line.split(' ').at(-1)) : 0;
}

describe('edges reach cloud replicas round robin, and go on when one stops', () => {
  let port: number;
  const replicas: Replica[] = [];
  let client: OffloadClient;
  let sequence = 0;
  const ask = () => client.infer('text-intent', new TextEncoder().encode('where is my order'), { taskId: `r${sequence++}`, budgetMs: 5_000, image: false });

  before(async () => {
    port = await freeLoopbackPort();
    for (const host of hosts) {
      const metricsPort = await freeLoopbackPort();
      const child = await startCloudChild({ host, port, extraArgs: ['--models', 'text-intent', '--threads', '1', '--metrics-port', String(metricsPort)], readyTimeoutMs: 180_000 });
      replicas.push({ host, child, metricsPort });
    }
    const config = loadEdgeConfig(undefined, { cloud: `ipv4:${hosts.map((h) => `${h}:${port}`).join(',')}` });
    // A short cool-down, so the test sees the circuit close again within seconds.
    client = await OffloadClient.connect(config, log, { coolDownMs: 200, maxCoolDownMs: 1_000 });
  });

  after(async () => {
    client?.close();
    await Promise.all(replicas.map((r) => r.child.stop()));
  });

  test('both replicas are up on one port, and the one stream rides one of them', async () => {
    for (let i = 0; i < 10; i++) assert.deepEqual((await ask()).result.intent !== undefined, true);
    const counts = await Promise.all(replicas.map(answered));
    assert.deepEqual([...counts].sort(), [0, 10], `one replica answered every request on the stream (counts ${counts.join(', ')})`);
  });

  test('stopping the replica that carries the stream: in-flight requests fail as UNAVAILABLE, later ones reach the other', async () => {
    const counts = await Promise.all(replicas.map(answered));
    const serving = replicas[counts.indexOf(Math.max(...counts))]!;
    const other = replicas.find((r) => r !== serving)!;
    const otherBefore = await answered(other);

    const inFlight = Array.from({ length: 8 }, () => ask().then(
      () => 'ok',
      (err: InferError) => err.code,
    ));
    const stopped = serving.child.stop();
    const outcomes = [...(await Promise.all(inFlight))];
    // Keep asking as an agent would, until ten in a row come back from the cloud.
    let inARow = 0;
    for (const deadline = Date.now() + 30_000; inARow < 10; ) {
      assert.ok(Date.now() < deadline, `no ten answers in a row within 30 s after the stop (outcomes: ${outcomes.join(' ')})`);
      const outcome = await ask().then(
        () => 'ok',
        (err: InferError) => err.code,
      );
      outcomes.push(outcome);
      inARow = outcome === 'ok' ? inARow + 1 : 0;
      if (outcome !== 'ok') await new Promise((resolve) => setTimeout(resolve, 50));
    }
    await stopped;
    const failures = outcomes.filter((o) => o !== 'ok');
    assert.deepEqual([...new Set(failures)].filter((code) => code !== 'UNAVAILABLE'), [], 'every failure is UNAVAILABLE, which the agent runs on the device instead');
    assert.ok((await answered(other)) - otherBefore >= 10, `the other replica (${other.host}) answered the requests after the stop`);
    assert.equal(client.health().state, 'closed');
  });
});
