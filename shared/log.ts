import { pino, type DestinationStream, type Logger } from 'pino';
import { redactUrlCredentials } from './secrets.js';

export type { Logger };

/**
 * The one logger: JSON lines on stderr (stdout stays free for CLI output).
 * Level from SPLITINFER_LOG_LEVEL, default info; tests pass 'silent' or their own destination.
 * Credentials in URLs are masked in every line, whichever field or message holds them.
 */
export function createLogger(name: string, level = process.env.SPLITINFER_LOG_LEVEL ?? 'info', destination: DestinationStream = pino.destination(2)): Logger {
  return pino({ name, level, base: { name }, hooks: { streamWrite: redactUrlCredentials } }, destination);
}
