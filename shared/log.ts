import { pino, type DestinationStream, type Logger } from 'pino';

export type { Logger };

/**
 * The one logger: JSON lines on stderr (stdout stays free for CLI output).
 * Level from SPLITINFER_LOG_LEVEL, default info; tests pass 'silent' or their own destination.
 */
export function createLogger(name: string, level = process.env.SPLITINFER_LOG_LEVEL ?? 'info', destination: DestinationStream = pino.destination(2)): Logger {
  return pino({ name, level, base: { name } }, destination);
}
