import { pino, type Logger } from 'pino';

export type { Logger };

/** One JSON logger for the process; components take children of it. */
export function createLogger(level: string): Logger {
  return pino({ level, base: { service: 'kura' }, timestamp: pino.stdTimeFunctions.isoTime });
}
