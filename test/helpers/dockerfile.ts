/**
 * A Dockerfile read the way the builder reads it, for tests that check an
 * image's recipe without a Docker daemon: comments dropped, `\` continuations
 * joined, instructions grouped into stages, exec-form (JSON) arguments parsed.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { packageRoot } from '../../shared/paths.js';

export interface Instruction {
  /** Upper case: FROM, RUN, COPY, … */
  keyword: string;
  /** Everything after the keyword, continuations joined. */
  text: string;
}

export interface Stage {
  /** The `AS name`, or the stage's index as a string. */
  name: string;
  base: string;
  instructions: Instruction[];
}

export function parseDockerfile(source: string): Stage[] {
  const logical: string[] = [];
  let pending = '';
  for (const raw of source.split('\n')) {
    if (/^\s*#/.test(raw)) continue;
    const line = raw.trimEnd();
    if (line.endsWith('\\')) {
      pending += `${line.slice(0, -1)} `;
      continue;
    }
    const joined = (pending + line).trim();
    pending = '';
    if (joined) logical.push(joined);
  }
  const stages: Stage[] = [];
  for (const line of logical) {
    const match = /^(\w+)\s+(.*)$/s.exec(line);
    if (!match) throw new Error(`Dockerfile line without arguments: ${line}`);
    const keyword = match[1]!.toUpperCase();
    const text = match[2]!.replace(/\s+/g, ' ').trim();
    if (keyword === 'FROM') {
      const [base, as, name] = text.split(' ');
      stages.push({ base: base!, name: as?.toUpperCase() === 'AS' ? name! : String(stages.length), instructions: [] });
      continue;
    }
    const stage = stages.at(-1);
    if (!stage) throw new Error(`Dockerfile: ${keyword} before the first FROM`);
    stage.instructions.push({ keyword, text });
  }
  return stages;
}

export function instructions(stage: Stage, keyword: string): Instruction[] {
  return stage.instructions.filter((i) => i.keyword === keyword);
}

/** The exec-form argument list of CMD / ENTRYPOINT / HEALTHCHECK … CMD; shell form is refused (signals would go to a shell). */
export function execForm(text: string): string[] {
  const json = text.slice(text.indexOf('['));
  const args: unknown = JSON.parse(json);
  if (!Array.isArray(args) || !args.every((a) => typeof a === 'string')) throw new Error(`not an exec-form list of strings: ${text}`);
  return args;
}

export interface Copy {
  /** The stage copied from; undefined: the build context. */
  from: string | undefined;
  sources: string[];
  destination: string;
}

export function parseCopy(text: string): Copy {
  const words = text.split(' ');
  const flags = words.filter((w) => w.startsWith('--'));
  const paths = words.filter((w) => !w.startsWith('--'));
  const from = flags.find((f) => f.startsWith('--from='))?.slice('--from='.length);
  return { from, sources: paths.slice(0, -1), destination: paths.at(-1)! };
}

/** Local modules reachable by static or literal dynamic imports from `entries` (paths under dist/). */
export function reachableModules(entries: string[]): Set<string> {
  const seen = new Set<string>();
  const queue = [...entries];
  while (queue.length) {
    const file = queue.pop()!;
    if (seen.has(file)) continue;
    seen.add(file);
    const source = readFileSync(path.join(packageRoot, 'dist', file), 'utf8');
    for (const match of source.matchAll(/(?:from|import\()\s*'(\.{1,2}\/[^']+\.js)'/g)) {
      queue.push(path.posix.normalize(path.posix.join(path.posix.dirname(file), match[1]!)));
    }
  }
  return seen;
}

/** The module `splitinfer <name>` loads (shared/cli.ts registers each by path), under dist/. */
export function commandModule(name: string): string {
  const source = readFileSync(path.join(packageRoot, 'dist/shared/cli.js'), 'utf8');
  const target = new RegExp(`\\b${name}: \\{ module: at\\('([^']+)'\\)`).exec(source)?.[1];
  if (!target) throw new Error(`shared/cli.ts registers no command '${name}'`);
  return path.posix.normalize(path.posix.join('shared', target));
}
