/**
 * A real Prometheus (Debian's `prometheus`, installed by .ci/run) scraping a
 * real cloud tier and a real agent every second, with the shipped alert
 * rules loaded: it finds both targets up and their series in its API, the
 * rules evaluate, and every Grafana panel expression is valid PromQL to it.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { stringify } from 'yaml';
import { loadEdgeConfig } from '../../edge/config.js';
import { freeLoopbackPort, stopChild } from '../../edge/local-stack.js';
import { startEdgeService, type EdgeService } from '../../edge/service.js';
import { createLogger } from '../../shared/log.js';
import { packageRoot } from '../../shared/paths.js';
import { startTestCloud } from '../helpers/cloud.js';
import { AgentRequester, findProgram, startAedes, type TestBroker } from '../helpers/mqtt.js';
import { tempStateDir } from '../helpers/state-dir.js';

const prometheusBinary = findProgram('prometheus');
const skip = prometheusBinary ? undefined : 'prometheus is not installed (apt-get install prometheus; .ci/run does)';
const log = createLogger('prometheus-test', process.env.SPLITINFER_LOG_LEVEL ?? 'silent');

interface QueryResult {
  metric: Record<string, string>;
  value: [number, string];
}

describe('Prometheus scraping a cloud tier and an agent', { skip }, () => {
  let broker: TestBroker;
  let cloud: Awaited<ReturnType<typeof startTestCloud>>;
  let edge: EdgeService;
  let prometheus: ChildProcess;
  let api: string;
  let stderr = '';
  const state = tempStateDir();
  const work = mkdtempSync(path.join(tmpdir(), 'splitinfer-prometheus-'));
  const deviceId = `scraped-${process.pid}`;

  async function get<T>(pathAndQuery: string): Promise<{ status: string; data: T; error?: string }> {
    const response = await fetch(`${api}${pathAndQuery}`);
    return (await response.json()) as { status: string; data: T; error?: string };
  }

  const query = (promql: string) => get<{ result: QueryResult[] }>(`/api/v1/query?query=${encodeURIComponent(promql)}`);

  /** Polls until `check` returns a value; Prometheus scrapes every second, a loaded machine may take longer. */
  async function eventually<T>(what: string, check: () => Promise<T | undefined>, timeoutMs = 60_000): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (prometheus.exitCode !== null) throw new Error(`prometheus exited with code ${prometheus.exitCode}:\n${stderr}`);
      const value = await check().catch(() => undefined);
      if (value !== undefined) return value;
      if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs / 1000} s\n${stderr.slice(-2000)}`);
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
  }

  before(async () => {
    broker = await startAedes();
    cloud = await startTestCloud({ models: ['text-intent'] });
    edge = await startEdgeService(
      loadEdgeConfig(undefined, { deviceId, broker: { url: broker.url, protocolVersion: broker.protocolVersion }, cloud: cloud.address, stateDir: state.dir, metricsPort: 0 }),
      log,
    );
    const port = await freeLoopbackPort();
    api = `http://127.0.0.1:${port}`;
    const config = {
      global: { scrape_interval: '1s', evaluation_interval: '1s' },
      rule_files: [path.join(packageRoot, 'deploy', 'prometheus', 'alerts.yml')],
      scrape_configs: [
        { job_name: 'splitinfer-cloud', static_configs: [{ targets: [`127.0.0.1:${cloud.server.metricsPort}`] }] },
        { job_name: 'splitinfer-edge', static_configs: [{ targets: [`127.0.0.1:${edge.metricsPort}`] }] },
      ],
    };
    writeFileSync(path.join(work, 'prometheus.yml'), stringify(config));
    prometheus = spawn(
      prometheusBinary!,
      [`--config.file=${path.join(work, 'prometheus.yml')}`, `--storage.tsdb.path=${path.join(work, 'data')}`, `--web.listen-address=127.0.0.1:${port}`, '--log.level=warn'],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
    prometheus.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    await eventually('Prometheus ready', async () => ((await fetch(`${api}/-/ready`)).status === 200 ? true : undefined));
  });

  after(async () => {
    if (prometheus) await stopChild(prometheus, 'SIGTERM', 10_000);
    await edge?.close();
    await cloud?.server.drain(5_000);
    await broker?.stop();
    state.remove();
    rmSync(work, { recursive: true, force: true });
  });

  test('both targets are up', async () => {
    const up = await eventually('both targets up', async () => {
      const { data } = await query('up == 1');
      return data.result.length === 2 ? data.result : undefined;
    });
    assert.deepEqual(up.map((r) => r.metric.job).sort(), ['splitinfer-cloud', 'splitinfer-edge']);
  });

  test("a request through the agent shows in both tiers' series", async () => {
    const requester = await AgentRequester.connect(broker, deviceId);
    try {
      const { reply } = await requester.ask({ id: 'scraped-1', inputs: { text: 'where is my parcel' }, prefer: { text: 'cloud' } });
      assert.equal(reply.placement.text?.ran, 'cloud', JSON.stringify(reply));
    } finally {
      await requester.close();
    }
    const cloudSeries = await eventually('the cloud counted the request', async () => {
      const { data } = await query('nv_inference_request_success{job="splitinfer-cloud", model="text-intent"} >= 1');
      return data.result[0];
    });
    assert.equal(cloudSeries.metric.instance, `127.0.0.1:${cloud.server.metricsPort}`);
    const edgeSeries = await eventually('the agent counted the task', async () => {
      const { data } = await query('splitinfer_edge_tasks_total{job="splitinfer-edge", modality="text", placement="cloud", outcome="ok"} >= 1');
      return data.result[0];
    });
    assert.equal(edgeSeries.metric.device, deviceId);
    const { data } = await query('splitinfer_edge_cloud_circuit_state{state="closed"}');
    assert.equal(data.result[0]?.value[1], '1');
  });

  test('the shipped alert rules load and evaluate, and none fires on a healthy stack', async () => {
    const rules = await eventually('every rule evaluated', async () => {
      const { data } = await get<{ groups: { rules: { name: string; health: string; state: string; lastEvaluation: string }[] }[] }>('/api/v1/rules');
      const all = data.groups.flatMap((g) => g.rules);
      return all.length === 5 && all.every((r) => r.health === 'ok' && !r.lastEvaluation.startsWith('0001')) ? all : undefined;
    });
    assert.deepEqual(rules.filter((r) => r.state !== 'inactive').map((r) => r.name), []);
  });

  test('every Grafana panel expression is valid PromQL', async () => {
    const dir = path.join(packageRoot, 'deploy', 'grafana', 'dashboards');
    for (const file of readdirSync(dir).filter((f) => f.endsWith('.json'))) {
      const dashboard = JSON.parse(readFileSync(path.join(dir, file), 'utf8')) as { panels: { title: string; targets: { expr: string }[] }[] };
      for (const panel of dashboard.panels) {
        for (const { expr } of panel.targets) {
          // Grafana's variables, as Grafana substitutes them.
          const promql = expr.replaceAll('$__rate_interval', '1m').replaceAll('$instance', '.*').replaceAll('$device', '.*');
          const answer = await query(promql);
          assert.equal(answer.status, 'success', `${file} '${panel.title}': ${answer.error} in ${promql}`);
        }
      }
    }
  });
});
