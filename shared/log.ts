import { pino, type Logger } from 'pino';

export type { Logger };

/**
 * The one logger: JSON lines on stderr (stdout stays free for CLI output).
 * Level from SPLITINFER_LOG_LEVEL, default info; tests set 'silent' or 'warn'.
 */
export function createLogger(name: string, level = process.env.SPLITINFER_LOG_LEVEL ?? 'info'): Logger {
  return pino({ name, level, base: { name } }, pino.destination(2));
}
