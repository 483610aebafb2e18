import pino, { type Logger } from 'pino';

let root: Logger | null = null;

/**
 * The process's root pino logger (JSON to stdout), created on first use at `level`: entry points
 * call it first with the configured level (`config.logLevel`, from LOG_LEVEL).
 */
export function rootLogger(level = 'info'): Logger {
  if (root === null) {
    root = pino({ level, base: { pid: process.pid }, timestamp: pino.stdTimeFunctions.isoTime });
  }
  return root;
}

/** A child logger bound to a component (and queue, where there is one). */
export function componentLogger(component: string, queue?: string): Logger {
  return rootLogger().child(queue === undefined ? { component } : { component, queue });
}

export type { Logger };
