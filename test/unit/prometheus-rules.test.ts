/**
 * deploy/prometheus: the alert rules load (`promtool check rules`), each alert
 * fires and stays silent where its unit tests say (`promtool test rules`), the
 * scrape config is valid, and the rules use only metrics the tiers export.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { parse } from 'yaml';
import { packageRoot } from '../../shared/paths.js';
import { exportedMetricNames, selectedMetricNames } from '../helpers/metrics-text.js';
import { findProgram } from '../helpers/mqtt.js';

const run = promisify(execFile);
const folder = path.join(packageRoot, 'deploy', 'prometheus');
const promtool = findProgram('promtool');
const skip = promtool ? undefined : "promtool is not installed (apt-get install prometheus; .ci/run does)";

interface Rule {
  alert: string;
  expr: string;
  for?: string;
  labels: { severity: string };
  annotations: { summary: string; description: string };
}
const rules = () => (parse(readFileSync(path.join(folder, 'alerts.yml'), 'utf8')) as { groups: { rules: Rule[] }[] }).groups.flatMap((g) => g.rules);

test('promtool check rules accepts the alert rules', { skip }, async () => {
  const { stdout } = await run(promtool!, ['check', 'rules', 'alerts.yml'], { cwd: folder });
  assert.match(stdout, /SUCCESS: 5 rules found/);
});

test("promtool test rules: every alert's unit tests pass", { skip }, async () => {
  const { stdout, stderr } = await run(promtool!, ['test', 'rules', 'alerts.test.yml'], { cwd: folder }).catch((err: { stdout: string; stderr: string }) => {
    assert.fail(`promtool test rules failed:\n${err.stdout}\n${err.stderr}`);
  });
  assert.match(stdout + stderr, /SUCCESS/);
});

test('each alert has unit tests that expect it to fire and expect it silent', () => {
  const tests = (parse(readFileSync(path.join(folder, 'alerts.test.yml'), 'utf8')) as { tests: { alert_rule_test: { alertname: string; exp_alerts: unknown[] }[] }[] }).tests.flatMap(
    (t) => t.alert_rule_test,
  );
  for (const { alert } of rules()) {
    const cases = tests.filter((t) => t.alertname === alert);
    assert.ok(cases.some((t) => t.exp_alerts.length > 0), `${alert}: no test expects it to fire`);
    assert.ok(cases.some((t) => t.exp_alerts.length === 0), `${alert}: no test expects it silent`);
  }
});

test('the alerts cover cloud down, error rate, queue time, breakers open on many devices and devices offline', () => {
  assert.deepEqual(rules().map((r) => r.alert), [
    'SplitinferCloudDown',
    'SplitinferCloudErrorRate',
    'SplitinferCloudQueueTimeHigh',
    'SplitinferEdgeBreakerOpenOnManyDevices',
    'SplitinferDeviceOffline',
  ]);
  for (const rule of rules()) {
    assert.match(rule.labels.severity, /^(critical|warning)$/, rule.alert);
    assert.ok(rule.for && rule.annotations.summary && rule.annotations.description, `${rule.alert} needs for, summary and description`);
  }
});

test('the alerts use only metrics the cloud or the edge exports', async () => {
  const known = await exportedMetricNames();
  for (const rule of rules()) {
    for (const name of selectedMetricNames(rule.expr)) assert.ok(known.has(name), `${rule.alert} uses ${name}, which neither tier exports`);
  }
});

test('promtool check config accepts the scrape config, whose jobs the alerts select', { skip }, async () => {
  const { stdout } = await run(promtool!, ['check', 'config', 'prometheus.yml'], { cwd: folder });
  assert.match(stdout, /SUCCESS: prometheus\.yml is valid/);
  const config = parse(readFileSync(path.join(folder, 'prometheus.yml'), 'utf8')) as { scrape_configs: { job_name: string }[]; rule_files: string[] };
  assert.deepEqual(config.scrape_configs.map((c) => c.job_name), ['splitinfer-cloud', 'splitinfer-edge']);
  assert.deepEqual(config.rule_files, ['alerts.yml']);
  for (const rule of rules()) {
    for (const [, job] of rule.expr.matchAll(/job="([^"]+)"/g)) assert.ok(['splitinfer-cloud', 'splitinfer-edge'].includes(job!), `${rule.alert} selects job ${job}`);
  }
});
