// Reports an import that closes a cycle between the project's files, counting
// `import type` too. import-x/no-cycle skips type-only imports because they
// vanish at run time, but a cycle through types still ties the files together:
// none of them can be read, moved or split without the others.
import { readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import ts from 'typescript';

/** file → its mtime and its imports of project files (`.ts` paths). */
const importsByFile = new Map();

/** The project source a relative specifier names (`./agent.js` → `agent.ts`), or null for a package or a non-TS file. */
function sourceOf(specifier, importer) {
  if (!specifier.startsWith('.')) return null;
  const target = path.resolve(path.dirname(importer), specifier).replace(/\.js$/, '.ts');
  if (!target.endsWith('.ts')) return null;
  try {
    return statSync(target).isFile() ? target : null;
  } catch {
    return null;
  }
}

/** The relative imports written in `text` (the file `file`), with where each is written. */
function importsIn(text, file) {
  return ts
    .preProcessFile(text, true, true)
    .importedFiles.map(({ fileName, pos, end }) => ({ target: sourceOf(fileName, file), pos, end }))
    .filter(({ target }) => target !== null);
}

/** The imports of a file on disk; read again only when the file changes (an editor keeps the linter running). */
function importsOf(file) {
  const { mtimeMs } = statSync(file);
  const cached = importsByFile.get(file);
  if (cached?.mtimeMs === mtimeMs) return cached.imports;
  const imports = importsIn(readFileSync(file, 'utf8'), file);
  importsByFile.set(file, { mtimeMs, imports });
  return imports;
}

/** The shortest import path from `start` back to `goal` (both included), or null. */
function pathBack(start, goal) {
  const cameFrom = new Map([[start, null]]);
  const queue = [start];
  while (queue.length > 0) {
    const file = queue.shift();
    for (const { target } of importsOf(file)) {
      if (cameFrom.has(target)) continue;
      cameFrom.set(target, file);
      if (target === goal) {
        const route = [];
        for (let step = goal; step !== null; step = cameFrom.get(step)) route.unshift(step);
        return route;
      }
      queue.push(target);
    }
  }
  return null;
}

export default {
  meta: {
    type: 'problem',
    docs: { description: 'Disallow import cycles between project files, type-only imports included' },
    messages: {
      cycle: 'import cycle: {{route}}. Move what both sides need into a file that neither imports back, or pass it in.',
    },
    schema: [],
  },
  create(context) {
    const file = context.physicalFilename;
    return {
      Program() {
        const { sourceCode } = context;
        const seen = new Set();
        for (const { target, pos, end } of importsIn(sourceCode.text, file)) {
          if (seen.has(target)) continue;
          seen.add(target);
          const route = target === file ? [file] : pathBack(target, file);
          if (route === null) continue;
          context.report({
            loc: { start: sourceCode.getLocFromIndex(pos), end: sourceCode.getLocFromIndex(end) },
            messageId: 'cycle',
            data: { route: [file, ...route].map((step) => path.relative(context.cwd, step)).join(' → ') },
          });
        }
      },
    };
  },
};
