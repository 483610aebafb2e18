/** Options shared by every {@link PipelineError}. */
export interface PipelineErrorOptions {
  /** The error that caused this one, if any. */
  cause?: unknown;
}

/**
 * Base of every error the pipeline throws. `code` is a stable machine-readable string, `retriable`
 * says whether the same work may succeed if tried again later.
 */
export class PipelineError extends Error {
  readonly code: string;
  readonly retriable: boolean;

  constructor(code: string, message: string, retriable: boolean, options: PipelineErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = code;
    this.retriable = retriable;
  }
}

/** A message failed schema or semantic validation. Never retried; dead-lettered with the reason. */
export class ValidationError extends PipelineError {
  constructor(message: string, options: PipelineErrorOptions = {}) {
    super('MESSAGE_INVALID', message, false, options);
  }
}

/** A bar arrived older than the last accepted bar of its symbol. Never retried. */
export class OutOfOrderError extends PipelineError {
  constructor(message: string, options: PipelineErrorOptions = {}) {
    super('BAR_OUT_OF_ORDER', message, false, options);
  }
}

/** The broker connection is gone or could not be made. Retriable. */
export class BrokerConnectionError extends PipelineError {
  constructor(message: string, options: PipelineErrorOptions = {}) {
    super('BROKER_CONNECTION', message, true, options);
  }
}

/** A publish was not confirmed in time, or was nacked or returned by the broker. Retriable. */
export class PublishError extends PipelineError {
  constructor(message: string, options: PipelineErrorOptions = {}) {
    super('PUBLISH_FAILED', message, true, options);
  }
}

/** Redis could not be read or written. Retriable. */
export class StateStoreError extends PipelineError {
  constructor(message: string, options: PipelineErrorOptions = {}) {
    super('STATE_STORE', message, true, options);
  }
}

/** A circuit breaker is open and the call had no fallback. Retriable. */
export class CircuitOpenError extends PipelineError {
  constructor(message: string, options: PipelineErrorOptions = {}) {
    super('CIRCUIT_OPEN', message, true, options);
  }
}

/** A configuration value is missing or invalid. The process stops at start. */
export class ConfigError extends PipelineError {
  constructor(message: string, options: PipelineErrorOptions = {}) {
    super('CONFIG_INVALID', message, false, options);
  }
}

/**
 * The one place retry decisions are made. Walks the `cause` chain: the first {@link PipelineError}
 * decides; `TypeError`, `RangeError` and `SyntaxError` are bugs and never retried; anything else
 * unknown (a socket error from a driver) is treated as transient.
 */
export function isRetriable(err: unknown): boolean {
  let current: unknown = err;
  for (let depth = 0; depth < 16 && current !== undefined && current !== null; depth++) {
    if (current instanceof PipelineError) return current.retriable;
    if (
      current instanceof TypeError ||
      current instanceof RangeError ||
      current instanceof SyntaxError
    ) {
      return false;
    }
    current = current instanceof Error ? current.cause : undefined;
  }
  return true;
}

/**
 * The process cannot start as configured: a bad setting, an unknown vhost, refused credentials, a
 * taken port, an unreachable Redis, a missing broker plugin. Never retried: the process prints the
 * message (one line naming `setting` and the fix) and exits with {@link EXIT_STARTUP}.
 */
export class StartupError extends PipelineError {
  /** The setting to fix, e.g. `AMQP_URL`. */
  readonly setting: string;

  constructor(setting: string, message: string, options: PipelineErrorOptions = {}) {
    super('STARTUP_FAILED', message, false, options);
    this.setting = setting;
  }
}

/** The message of a thrown error, or the thrown value as a string. */
export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/**
 * One actionable line for a server that could not listen on `host:port`, naming the settings that
 * chose them (`HEALTH_HOST`/`HEALTH_PORT`, `GATEWAY_HOST`/`GATEWAY_PORT`); `inUse` says what to stop
 * when the port is taken.
 */
export function listenError(
  err: NodeJS.ErrnoException,
  host: string,
  port: number,
  settings: { host: string; port: string; inUse: string },
): StartupError {
  const { host: H, port: P } = settings;
  switch (err.code) {
    case 'EADDRINUSE':
      return new StartupError(P, `${P}: port ${port} on ${host} is already in use${settings.inUse} or set ${P} to a free port (0 picks one)`, { cause: err });
    case 'EACCES':
      return new StartupError(P, `${P}: binding ${host}:${port} needs privileges this process lacks; set ${P} above 1023`, { cause: err });
    case 'EADDRNOTAVAIL':
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return new StartupError(H, `${H}: ${host} is not an address of this machine; use 127.0.0.1, 0.0.0.0 or one of its addresses`, { cause: err });
    default:
      return new StartupError(P, `${P}: cannot listen on ${host}:${port} (${err.message}); fix ${H} or ${P}`, { cause: err });
  }
}

/** Exit code of every entry point (supervisor, worker, CLI) that stops on a {@link StartupError} or a configuration error. */
export const EXIT_STARTUP = 2;
