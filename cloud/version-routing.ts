/**
 * Which version of a model answers a request that names none: an A/B split
 * by weight, sticky per key. A key (the request's `ab_key`, e.g. a device id,
 * or else its tenant) hashes to a fixed point in [0, 1), and the weights cut
 * that interval into one slice per version, so one key keeps its version for
 * as long as the weights stay the same. A request with no key draws a point
 * at random. A version with weight 0 answers only requests that name it.
 */
import { createHash } from 'node:crypto';
import type { SchemaObject } from 'ajv';

/** `versions.<model id>` in the cloud config. */
export interface VersionPolicy {
  /** Catalog variants loaded as this model's versions; the first is the default. */
  variants: string[];
  /** A/B split of requests without model_version; empty: the default version takes them all. */
  weights: Record<string, number>;
  /** A version that gets a copy of every answered request, compared and counted, never returned; empty: none. */
  shadow: string;
}

export const versionPoliciesSchema: SchemaObject = {
  type: 'object',
  default: {},
  additionalProperties: {
    type: 'object',
    additionalProperties: false,
    required: ['variants'],
    properties: {
      variants: { type: 'array', minItems: 1, uniqueItems: true, items: { type: 'string', minLength: 1 } },
      weights: { type: 'object', default: {}, additionalProperties: { type: 'number', minimum: 0 } },
      shadow: { type: 'string', default: '' },
    },
  },
};

/** Weights and shadow must name loaded variants, and some version must take the default traffic. */
export function checkVersionPolicy(model: string, policy: VersionPolicy): void {
  const where = `config versions.${model}`;
  for (const name of [...Object.keys(policy.weights), ...(policy.shadow ? [policy.shadow] : [])]) {
    if (!policy.variants.includes(name)) {
      throw new Error(`${where} names version '${name}', which is not in its variants (${policy.variants.join(', ')}); add it there or fix the name`);
    }
  }
  const weights = Object.values(policy.weights);
  if (weights.length > 0 && weights.every((w) => w === 0)) {
    throw new Error(`${where}.weights are all 0, so no version takes requests without model_version; give one version a positive weight`);
  }
}

/** The point in [0, 1) a sticky key lands on, the same in every process and replica. */
export function stickyPoint(key: string): number {
  return createHash('sha256').update(key, 'utf8').digest().readUInt32BE(0) / 2 ** 32;
}

/**
 * The version for a request without model_version among `candidates` (the
 * loaded versions that serve the requested name, default first).
 */
export function pickVersion(candidates: readonly string[], weights: Readonly<Record<string, number>>, key: string | undefined, random: () => number = Math.random): string {
  const weighted = candidates.filter((v) => (weights[v] ?? 0) > 0);
  if (weighted.length === 0) return candidates[0]!;
  const total = weighted.reduce((sum, v) => sum + weights[v]!, 0);
  let point = (key === undefined ? random() : stickyPoint(key)) * total;
  for (const version of weighted) {
    point -= weights[version]!;
    if (point < 0) return version;
  }
  return weighted[weighted.length - 1]!;
}
