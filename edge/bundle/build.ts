/**
 * Builds the offline install bundle of the edge agent for one Linux
 * architecture: a tarball a device installs with no network.
 *
 *   splitinfer-edge-<version>-linux-<arch>/
 *     install.sh  splitinfer-edge.service  splitinfer.sysusers  edge.yaml  bundle.json
 *     app/  package.json  dist/ (no tests)  models/ (catalog + the edge's files)  node_modules/ (production, for <arch>)
 */
import { execFile } from 'node:child_process';
import { chmodSync, copyFileSync, cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { loadCatalog } from '../../shared/catalog.js';
import { allTaskSettings, loadEdgeConfig } from '../config.js';
import { checkNativeFiles, type BundleArch } from './native-files.js';
import { installProductionModules } from './node-modules.js';

const run = promisify(execFile);

/** bundle.json: what `install.sh` and `splitinfer doctor` read about a bundle. */
export interface BundleManifest {
  name: string;
  version: string;
  platform: 'linux';
  arch: BundleArch;
  /** The Node.js versions the agent runs on (package.json engines.node). */
  node: string;
  /** Catalog model@variant the bundle holds the files of (the default config's local variants). */
  models: string[];
  builtAt: string;
}

export interface BundleOptions {
  arch: BundleArch;
  /** Folder the tarball is written to. */
  outDir: string;
  /** Names the install folder /opt/splitinfer/<version>; package.json's version by default. */
  version?: string;
  /** The built repository (dist/ present), e.g. packageRoot. */
  repoRoot: string;
}

export interface BuiltBundle {
  tarball: string;
  manifest: BundleManifest;
  /** Native files checked for the target architecture. */
  nativeFiles: number;
}

/**
 * The repository files the default config's local variants need (graphs and
 * assets with a repository path; `npm:` files come with node_modules), and
 * the model@variant names they serve. A device that configures another
 * local variant (e.g. text fp32) copies its file next to these.
 */
export function edgeModelFiles(repoRoot: string): { files: string[]; models: string[] } {
  const catalog = loadCatalog(path.join(repoRoot, 'models', 'catalog.yaml'));
  const files = new Set<string>(['models/catalog.yaml']);
  const models = new Set<string>();
  for (const { settings } of allTaskSettings(loadEdgeConfig().modalities)) {
    const model = catalog.models.find((m) => m.id === settings.model);
    const variant = model?.variants[settings.localVariant];
    if (!model || !variant) continue;
    models.add(`${model.id}@${settings.localVariant}`);
    for (const ref of [...Object.values(variant.graphs), ...Object.values(model.assets)]) {
      if (!ref.source.startsWith('npm:')) files.add(ref.source);
    }
  }
  return { files: [...files].sort(), models: [...models].sort() };
}

export async function buildBundle(options: BundleOptions): Promise<BuiltBundle> {
  const { arch, repoRoot } = options;
  const pkg = JSON.parse(readFileSync(path.join(repoRoot, 'package.json'), 'utf8')) as { version: string; engines: { node: string } };
  if (!existsSync(path.join(repoRoot, 'dist', 'shared', 'cli.js'))) throw new Error(`${repoRoot}/dist is not built — run npm run build first`);
  const version = options.version ?? pkg.version;
  if (!/^[0-9A-Za-z][0-9A-Za-z.+_-]*$/.test(version)) throw new Error(`bundle version '${version}' names a folder under /opt/splitinfer: use letters, digits and . + _ - only`);
  const name = `splitinfer-edge-${version}-linux-${arch}`;
  const work = mkdtempSync(path.join(os.tmpdir(), 'splitinfer-bundle-'));
  try {
    const top = path.join(work, name);
    const app = path.join(top, 'app');
    mkdirSync(app, { recursive: true });
    copyFileSync(path.join(repoRoot, 'package.json'), path.join(app, 'package.json'));
    cpSync(path.join(repoRoot, 'dist'), path.join(app, 'dist'), { recursive: true, filter: (src) => path.relative(path.join(repoRoot, 'dist'), src) !== 'test' && !src.endsWith('.map') });
    const { files, models } = edgeModelFiles(repoRoot);
    for (const file of files) cpSync(path.join(repoRoot, file), path.join(app, file));
    for (const file of ['install.sh', 'splitinfer-edge.service', 'splitinfer.sysusers', 'edge.yaml']) copyFileSync(path.join(repoRoot, 'deploy', 'edge', file), path.join(top, file));
    chmodSync(path.join(top, 'install.sh'), 0o755);

    const npmDir = path.join(work, 'npm');
    mkdirSync(npmDir);
    renameSync(await installProductionModules(repoRoot, npmDir, arch), path.join(app, 'node_modules'));
    const report = checkNativeFiles(app, arch);
    if (report.problems.length > 0) throw new Error(`the ${arch} bundle would not run on linux-${arch}:\n  ${report.problems.join('\n  ')}`);

    const manifest: BundleManifest = { name, version, platform: 'linux', arch, node: pkg.engines.node, models, builtAt: new Date().toISOString() };
    writeFileSync(path.join(top, 'bundle.json'), JSON.stringify(manifest, null, 2) + '\n');
    mkdirSync(options.outDir, { recursive: true });
    const tarball = path.resolve(options.outDir, `${name}.tar.gz`);
    await run('tar', ['-C', work, '-czf', tarball, '--owner=0', '--group=0', name]);
    return { tarball, manifest, nativeFiles: report.checked.length };
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}
