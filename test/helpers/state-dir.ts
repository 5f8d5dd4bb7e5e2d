import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

/** A fresh agent state folder (config `stateDir`) under the system temp folder, and how to remove it. */
export function tempStateDir(): { dir: string; remove(): void } {
  const dir = mkdtempSync(path.join(tmpdir(), 'splitinfer-state-'));
  return { dir, remove: () => rmSync(dir, { recursive: true, force: true }) };
}
