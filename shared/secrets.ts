/**
 * Secrets (API keys, broker passwords) come from a file or an environment
 * variable named in config, never from the config itself or a flag, so they
 * stay out of process listings, shell history and config repositories. They
 * are never logged: the logger also masks credentials in any URL it writes
 * (`mqtt://user:pass@host` → `mqtt://***@host`).
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';

export interface SecretSource {
  /** A file holding the secret (surrounding whitespace and a trailing newline are ignored). */
  file: string;
  /** An environment variable holding the secret. */
  env: string;
}

/** The secret named by `source`, or undefined when neither is set; `setting` names the config keys in errors. */
export function readSecret(source: SecretSource, setting: string): string | undefined {
  if (source.file && source.env) throw new Error(`${setting}: set either the file or the environment variable, not both`);
  if (source.file) {
    let text: string;
    try {
      text = readFileSync(source.file, 'utf8');
    } catch (err) {
      throw new Error(`${setting}: cannot read ${source.file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message} — check the path and that this user may read it`, { cause: err });
    }
    const secret = text.trim();
    if (!secret) throw new Error(`${setting}: ${source.file} is empty`);
    return secret;
  }
  if (source.env) {
    const secret = process.env[source.env]?.trim();
    if (!secret) throw new Error(`${setting}: the environment variable ${source.env} is not set or empty`);
    return secret;
  }
  return undefined;
}

export function sha256Hex(text: string): string {
  return createHash('sha256').update(text, 'utf8').digest('hex');
}

/** `scheme://user:pass@host` anywhere in `text` becomes `scheme://***@host`. */
export function redactUrlCredentials(text: string): string {
  return text.replace(/\b([a-z][a-z0-9+.-]*:\/\/)[^\s/@"'<>]+@/gi, '$1***@');
}
