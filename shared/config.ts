import { readFileSync } from 'node:fs';
import { Ajv, type SchemaObject } from 'ajv';
import { parse as parseYaml } from 'yaml';

/**
 * The one config loader: a YAML or JSON file (YAML is a superset of JSON),
 * then command-line overrides, validated and defaulted by a JSON schema that
 * each tier declares next to the code that uses it.
 */
/**
 * `T` is the shape `schema` describes once defaults are filled in. `upgrade`
 * turns an older form of a setting into the current one, in the file and in
 * the overrides alike, before they are merged.
 */
export function loadConfig<T>(
  schema: SchemaObject,
  file: string | undefined,
  overrides: Record<string, unknown> = {},
  upgrade: (settings: Record<string, unknown>) => Record<string, unknown> = (settings) => settings,
): T {
  let doc: Record<string, unknown> = {};
  if (file) {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (err) {
      throw new Error(`config file ${file} cannot be read: ${(err as Error).message}`, { cause: err });
    }
    const parsed: unknown = parseYaml(text) ?? {};
    if (typeof parsed !== 'object' || Array.isArray(parsed)) throw new Error(`config file ${file} must hold a mapping of settings`);
    doc = parsed as Record<string, unknown>;
  }
  const merged = mergeDeep(upgrade(doc), upgrade(overrides));
  const validate = new Ajv({ allErrors: true, useDefaults: true, coerceTypes: true }).compile(schema);
  if (!validate(merged)) {
    const where = file ? `config file ${file} (with command-line flags)` : 'command-line flags';
    const problems = validate.errors!.map((e) => `${e.instancePath || '/'} ${e.message}`).join('; ');
    throw new Error(`${where}: ${problems}`);
  }
  return merged as T;
}

function mergeDeep(base: Record<string, unknown>, over: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...base };
  for (const [key, value] of Object.entries(over)) {
    if (value === undefined) continue;
    const existing = out[key];
    // Recurse into objects so nested flags left undefined do not wipe file settings.
    out[key] = isPlainObject(value) ? mergeDeep(isPlainObject(existing) ? existing : {}, value) : value;
  }
  return out;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
