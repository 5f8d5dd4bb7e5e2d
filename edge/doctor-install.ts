/**
 * `splitinfer doctor` checks of an installed agent (deploy/edge/install.sh):
 * the service's state, the config file, whether the bundle's native code is
 * for this machine, and the TLS files the config names.
 */
import { execFile } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { packageRoot } from '../shared/paths.js';
import { checkNativeFiles, bundleArches, type BundleArch } from './bundle/native-files.js';
import type { EdgeConfig } from './config.js';

export interface Check {
  name: string;
  ok: boolean;
  detail: string;
}

const run = promisify(execFile);
const unitName = 'splitinfer-edge.service';

/** The unit's state from systemctl; not a failure where the agent is not installed as a service. */
export async function checkUnit(): Promise<Check> {
  const name = 'service';
  try {
    const { stdout } = await run('systemctl', ['show', unitName, '--property=LoadState,ActiveState,SubState,UnitFileState,NRestarts,MainPID']);
    const state = Object.fromEntries(stdout.trim().split('\n').map((line) => line.split('=', 2) as [string, string]));
    if (state.LoadState === 'not-found') return { name, ok: true, detail: `${unitName} is not installed (install.sh installs it; README: Install on a device)` };
    const detail = `${unitName} ${state.ActiveState} (${state.SubState}), ${state.UnitFileState}, pid ${state.MainPID}, restarted ${state.NRestarts ?? 0} times`;
    return state.ActiveState === 'active'
      ? { name, ok: true, detail }
      : { name, ok: false, detail: `${detail} — see journalctl -u ${unitName} -n 50` };
  } catch (err) {
    const { stderr, message } = err as { stderr?: string; message: string };
    return { name, ok: true, detail: `no service state: systemctl says ${(stderr || message).trim().split('\n')[0]}` };
  }
}

export function checkConfig(file: string | undefined, config: EdgeConfig): Check {
  const where = file ? path.resolve(file) : 'defaults and flags (no --config file)';
  return { name: 'config', ok: true, detail: `${where} is valid: device ${config.deviceId}, broker ${config.broker.url.replace(/\/\/[^@/]*@/, '//')}, cloud ${config.cloud.address}` };
}

/** The bundle this agent runs from (bundle.json beside app/) against this machine, and its native files read as ELF. */
export function checkBundle(): Check {
  const name = 'bundle';
  const manifestFile = path.join(packageRoot, '..', 'bundle.json');
  const arch = os.arch();
  if (!bundleArches.includes(arch as BundleArch)) return { name, ok: false, detail: `this machine is ${arch}; bundles exist for ${bundleArches.join(', ')}` };
  if (!existsSync(manifestFile)) return { name, ok: true, detail: `running from a checkout (${packageRoot}), not an installed bundle` };
  const report = checkNativeFiles(packageRoot, arch as BundleArch);
  const problems = report.problems.length > 0 ? `:\n      ${report.problems.slice(0, 5).join('\n      ')}` : '';
  const manifest = JSON.parse(readFileSync(manifestFile, 'utf8')) as { version: string; arch: string };
  const ok = manifest.arch === arch && problems === '';
  const mismatch = manifest.arch === arch ? '' : ` — this machine is linux-${arch}: install the ${arch} bundle (splitinfer bundle --arch ${arch})`;
  return { name, ok, detail: `splitinfer edge ${manifest.version} for linux-${manifest.arch}, ${report.checked.length} native files checked${mismatch}${problems}` };
}

/** Each TLS file the config names: readable, PEM, and certificates within their validity. */
export function checkTlsFiles(config: EdgeConfig): Check {
  const files = [
    ...Object.entries(config.broker.tls ?? {}).map(([kind, file]) => ({ what: `broker.tls.${kind}`, kind, file })),
    ...Object.entries(config.cloud.tls ?? {}).filter(([kind]) => kind !== 'serverName').map(([kind, file]) => ({ what: `cloud.tls.${kind}`, kind, file })),
  ].filter(({ file }) => file);
  if (files.length === 0) return { name: 'tls files', ok: true, detail: 'none configured' };
  const problems: string[] = [];
  const notes: string[] = [];
  for (const { what, kind, file } of files) {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (err) {
      problems.push(`${what} ${file} cannot be read: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message} — the service runs as user splitinfer: make it readable by group splitinfer`);
      continue;
    }
    if (!text.includes('-----BEGIN ')) {
      problems.push(`${what} ${file} is not PEM`);
      continue;
    }
    if (kind === 'key') continue;
    const cert = new X509Certificate(text);
    const expires = new Date(cert.validTo);
    if (expires.getTime() < Date.now()) problems.push(`${what} ${file} expired on ${expires.toISOString().slice(0, 10)}`);
    else notes.push(`${what} valid until ${expires.toISOString().slice(0, 10)}`);
  }
  return problems.length > 0
    ? { name: 'tls files', ok: false, detail: problems.join('; ') }
    : { name: 'tls files', ok: true, detail: `${files.length} readable${notes.length ? `, ${notes.join(', ')}` : ''}` };
}
