/**
 * The Grafana files of deploy/grafana: every dashboard panel queries metrics
 * the cloud or the edge really exports, through the datasource the
 * provisioning file creates, and the dashboard provider loads the folder the
 * dashboards are in. (A real Prometheus parses every expression in
 * test/e2e/prometheus-scrape.test.ts.)
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { parse } from 'yaml';
import { packageRoot } from '../../shared/paths.js';
import { exportedMetricNames, selectedMetricNames } from '../helpers/metrics-text.js';

const grafana = path.join(packageRoot, 'deploy', 'grafana');

interface Panel {
  id: number;
  title: string;
  datasource: { type: string; uid: string };
  gridPos: { x: number; y: number; w: number; h: number };
  targets: { refId: string; expr: string; datasource: { uid: string } }[];
}

function dashboards(): { file: string; json: { uid: string; title: string; panels: Panel[]; templating: { list: { name: string; query: { query: string } }[] } } }[] {
  const dir = path.join(grafana, 'dashboards');
  return readdirSync(dir)
    .filter((f) => f.endsWith('.json'))
    .map((file) => ({ file, json: JSON.parse(readFileSync(path.join(dir, file), 'utf8')) }));
}

test('the two dashboards are there: cloud serving and edge fleet', () => {
  assert.deepEqual(dashboards().map((d) => d.json.uid).sort(), ['splitinfer-cloud', 'splitinfer-edge-fleet']);
});

test('every panel expression selects only metrics the cloud or the edge exports', async () => {
  const known = await exportedMetricNames();
  for (const { file, json } of dashboards()) {
    assert.ok(json.panels.length >= 8, `${file}: ${json.panels.length} panels`);
    for (const panel of json.panels) {
      assert.ok(panel.targets.length > 0, `${file} panel '${panel.title}' has no query`);
      for (const { expr } of panel.targets) {
        const names = selectedMetricNames(expr);
        assert.ok(names.length > 0, `${file} '${panel.title}': no metric in ${expr}`);
        for (const name of names) assert.ok(known.has(name), `${file} panel '${panel.title}' queries ${name}, which neither tier exports: ${expr}`);
      }
    }
    for (const variable of json.templating.list) {
      const metric = /label_values\(([a-zA-Z_:][a-zA-Z0-9_:]*)/.exec(variable.query.query)?.[1];
      assert.ok(metric && known.has(metric), `${file} variable ${variable.name} reads ${metric}`);
    }
  }
});

test('the metric-name reader skips functions, keywords, labels, durations and numbers', () => {
  assert.deepEqual(
    selectedMetricNames('histogram_quantile(0.95, sum by (le, model) (rate(splitinfer_request_duration_seconds_bucket{job="x", model=~"a|b"}[$__rate_interval]))) / 1e6 > bool 2'),
    ['splitinfer_request_duration_seconds_bucket'],
  );
  assert.deepEqual(selectedMetricNames('sum(up{job="a"}) and on (job) count(nv_inference_request_success)'), ['up', 'nv_inference_request_success']);
});

test('panels query the provisioned datasource, have unique ids and sit on the 24-column grid', () => {
  const datasources = parse(readFileSync(path.join(grafana, 'provisioning', 'datasources', 'prometheus.yml'), 'utf8')) as { datasources: { uid: string; type: string }[] };
  const [datasource] = datasources.datasources;
  assert.equal(datasource?.type, 'prometheus');
  for (const { file, json } of dashboards()) {
    const ids = json.panels.map((p) => p.id);
    assert.equal(new Set(ids).size, ids.length, `${file}: duplicate panel ids`);
    for (const panel of json.panels) {
      assert.equal(panel.datasource.uid, datasource!.uid, `${file} '${panel.title}'`);
      for (const target of panel.targets) assert.equal(target.datasource.uid, datasource!.uid);
      assert.ok(panel.gridPos.x + panel.gridPos.w <= 24, `${file} '${panel.title}' is wider than the grid`);
    }
  }
});

test('the dashboard provider loads a file folder', () => {
  const providers = parse(readFileSync(path.join(grafana, 'provisioning', 'dashboards', 'splitinfer.yml'), 'utf8')) as { apiVersion: number; providers: { type: string; options: { path: string } }[] };
  assert.equal(providers.apiVersion, 1);
  assert.equal(providers.providers[0]?.type, 'file');
  assert.match(providers.providers[0]!.options.path, /^\/.+/);
});
