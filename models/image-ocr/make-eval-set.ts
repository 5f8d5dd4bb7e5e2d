/**
 * Renders the OCR evaluation set: 60 zh and 60 en single-line images with
 * known strings (fixed seed), written with expected.json (file → text) to
 * models/image-ocr/eval/. The images are committed, so evaluating needs no
 * fonts; rerun only to change the set.
 *
 * Needs fonts-noto-cjk and fonts-dejavu-core. Run after a build:
 *   node dist/models/image-ocr/make-eval-set.js
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { packageRoot } from '../../shared/paths.js';
import { seededRandom } from '../../shared/seeded-random.js';
import { randomLine, renderLine, type Language } from './text-lines.js';

const evalDir = path.join(packageRoot, 'models', 'image-ocr', 'eval');
const evalSeed = 20240605;
const perLanguage = 60;

async function main(): Promise<void> {
  const random = seededRandom(evalSeed);
  mkdirSync(evalDir, { recursive: true });
  const expected: Record<string, string> = {};
  let bytes = 0;
  for (const language of ['zh', 'en'] as Language[]) {
    for (let i = 0; i < perLanguage; i++) {
      const line = randomLine(random, language);
      const file = `${language}-${String(i).padStart(3, '0')}.png`;
      const png = await renderLine(line, 215 + Math.floor(random() * 41));
      writeFileSync(path.join(evalDir, file), png);
      expected[file] = line.text;
      bytes += png.length;
    }
  }
  writeFileSync(path.join(evalDir, 'expected.json'), JSON.stringify(expected, null, 1) + '\n');
  console.log(`${Object.keys(expected).length} images, ${(bytes / 1024).toFixed(0)} KiB, in ${evalDir}`);
}

await main();
