// Lint for the TypeScript sources: typescript-eslint's recommended rules, no
// import cycles (type-only imports included), and the folder boundaries of
// ARCHITECTURE.md ("Layout").
import js from '@eslint/js';
import { defineConfig } from 'eslint/config';
import { createNodeResolver, importX } from 'eslint-plugin-import-x';
import tseslint from 'typescript-eslint';
import noImportCycle from './eslint-rules/no-import-cycle.js';

// Sources import each other by their emitted name (`./agent.js`, NodeNext);
// the resolver maps that back to the `.ts` file so cycles and boundaries are
// checked on the sources.
const resolver = createNodeResolver({
  extensions: ['.ts', '.js', '.json', '.node'],
  extensionAlias: { '.js': ['.ts', '.js'] },
});

// `target` may not import `from`; paths are relative to the repository root.
const zone = (target, from, why) => ({ target, from, message: why });
const productFolders = ['./edge', './cloud', './shared', './models'];

export default defineConfig(
  { ignores: ['dist/', 'shared/gen/', 'node_modules/'] },
  {
    files: ['**/*.ts'],
    extends: [js.configs.recommended, tseslint.configs.recommended],
    plugins: { 'import-x': importX, splitinfer: { rules: { 'no-import-cycle': noImportCycle } } },
    settings: {
      'import-x/extensions': ['.ts', '.js'],
      'import-x/resolver-next': [resolver],
    },
    rules: {
      'splitinfer/no-import-cycle': 'error',
      'import-x/no-restricted-paths': ['error', {
        zones: [
          zone('./edge', './cloud', 'edge/ and cloud/ never import each other; move what both need to shared/.'),
          zone('./cloud', './edge', 'edge/ and cloud/ never import each other; move what both need to shared/.'),
          zone('./shared', ['./edge', './cloud'], 'shared/ imports nothing from edge/ or cloud/; move the code it needs to shared/.'),
          ...productFolders.map((folder) =>
            zone(folder, './test', 'product code never imports test/; move what it needs out of test/.')),
          zone(['./edge', './cloud', './shared'], './models', 'models/ holds build scripts and model files; what the tiers need at run time lives in shared/.'),
          zone('./models', ['./edge', './cloud'], 'models/ scripts import shared/ only.'),
        ],
      }],
      // tsc's noUnusedLocals / noUnusedParameters already fail the build on
      // these, with its own `_` convention (`for (const _ of text)`).
      '@typescript-eslint/no-unused-vars': 'off',
    },
  },
  {
    files: ['eslint.config.js', 'eslint-rules/*.js'],
    extends: [js.configs.recommended],
  },
  {
    // Tests read replies and generated messages whose shape the test itself
    // asserts; `any` there keeps the assertions readable.
    files: ['test/**/*.ts'],
    rules: { '@typescript-eslint/no-explicit-any': 'off' },
  },
  {
    // A file in edge/ over 250 lines is usually two files. One that needs more
    // says why in an `eslint-disable max-lines -- <reason>` comment at its top.
    files: ['edge/**/*.ts'],
    rules: {
      'max-lines': ['error', { max: 250, skipBlankLines: true, skipComments: true }],
    },
  },
);
