import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import { ConfigError, EXIT_STARTUP } from '../errors';
import { urlList } from '../util/url-list';

/** The roles a supervisor can run (PIPELINE_ROLES), in start order. */
export const ROLE_NAMES = ['strategic', 'tactical', 'trainer', 'gateway'] as const;
export type RoleName = (typeof ROLE_NAMES)[number];

/** Gateway roles, lowest first: each may do what the ones before it may. */
export const GATEWAY_ROLES = ['viewer', 'operator', 'admin'] as const;
export type GatewayRole = (typeof GATEWAY_ROLES)[number];

/** One configured API key: its role and the SHA-256 hex of the key (the key itself is not kept). */
export interface GatewayKey {
  role: GatewayRole;
  hash: string;
}

/** The gateway's settings (GATEWAY_*). */
export interface GatewayConfig {
  readonly host: string;
  readonly port: number;
  readonly keys: readonly GatewayKey[];
  readonly tls: { readonly cert: string; readonly key: string } | null;
  readonly auditFile: string;
  readonly rateLimitPerMinute: number;
  readonly bodyLimitBytes: number;
  readonly resultsPerSymbol: number;
  readonly maxSymbols: number;
  readonly wsBufferBytes: number;
  readonly wsFlushMs: number;
  /** Requests a minute per client address without a valid key (checked before the key). */
  readonly anonRateLimitPerMinute: number;
  /** Proxy addresses whose X-Forwarded-For is believed (empty: none). */
  readonly trustProxy: readonly string[];
  /** Size at which the audit file is rotated. */
  readonly auditMaxBytes: number;
  /** Rotated audit files kept (`<file>.1` newest … `<file>.N`). */
  readonly auditKeepFiles: number;
  /** Process calls run at once in the worker-thread pool (the queue holds four times as many). */
  readonly processConcurrency: number;
  /** Deadline of one process call, queue time included. */
  readonly processTimeoutMs: number;
  /** WebSockets open at once per key, and in all. */
  readonly wsMaxPerKey: number;
  readonly wsMaxTotal: number;
  /** Interval between WebSocket pings; a socket that has not answered the last one by the next is closed. */
  readonly wsPingMs: number;
  /** Lifetime of a WebSocket ticket. */
  readonly wsTicketSeconds: number;
  /** Longest time a client may take to send a whole request (headers and body). */
  readonly requestTimeoutMs: number;
}

const bool = (name: string) =>
  z.enum(['on', 'off', 'true', 'false', '1', '0'], {
    error: `${name} must be one of on, off, true, false, 1, 0`,
  });

const int = (name: string, min: number, max: number) => {
  const message = `${name} must be an integer between ${min} and ${max}`;
  return z.coerce.number({ error: message }).int(message).min(min, message).max(max, message);
};

/** Whether `v` is one URL of one of `protocols` (`amqp:`, ...). */
function isUrl(v: string, protocols: readonly string[]): boolean {
  try {
    return protocols.includes(new URL(v).protocol);
  } catch {
    return false;
  }
}

/** The entries of a comma-separated setting, trimmed, empty ones left out. */
const commaList = (v: string): string[] => v.split(',').map((x) => x.trim()).filter((x) => x !== '');

/**
 * AMQP_URL: one broker URL, or the nodes of one RabbitMQ cluster separated by commas, all with the
 * same vhost (a worker moves between them when a node goes away; a vhost that differs by node
 * would split the pipeline in two).
 */
const amqpUrls = () => {
  const one = (p: string): boolean => isUrl(p, ['amqp:', 'amqps:']);
  const vhostOf = (v: string): string => {
    const path = new URL(v).pathname;
    return path === '' || path === '/' ? '/' : decodeURIComponent(path.slice(1));
  };
  const parts = (v: string): string[] => urlList(v, 'amqp');
  return z
    .string()
    .refine((v) => parts(v).length > 0 && parts(v).every(one), {
      message:
        'AMQP_URL must be a URL starting with amqp: or amqps: (for example amqp://user:password@host:5672/vhost), or several separated by commas for the nodes of a cluster; fix AMQP_URL',
    })
    .refine((v) => !parts(v).every(one) || new Set(parts(v).map(vhostOf)).size === 1, {
      message: 'AMQP_URL lists nodes with different vhosts; every address of a cluster must name the same vhost; fix AMQP_URL',
    });
};

/**
 * Every environment variable the pipeline reads, with its default. Variables that start with
 * `PIPELINE_` but are not listed here stop the process at start, so that a misspelling never goes
 * unnoticed.
 */
export const EnvSchema = z.object({
  /**
   * Broker URL, `amqp:` or `amqps:`; a vhost in the path is honoured (`…/my-vhost`). Workers add
   * `?heartbeat=10` unless the URL sets one. Several URLs separated by commas name the nodes of one
   * RabbitMQ cluster (same vhost on each): every process connects to the first that answers and moves to
   * another when its node goes away (see docs/scaling.md).
   * @defaultValue amqp://guest:guest@127.0.0.1:5672
   */
  AMQP_URL: amqpUrls().default('amqp://guest:guest@127.0.0.1:5672'),
  /**
   * Redis URL, `redis:` or `rediss:`; a database number in the path is honoured. Several URLs
   * separated by commas name nodes of a Redis Cluster (database 0 only), and the pipeline then speaks
   * Redis Cluster: state keys carry the symbol as a hash tag and group commits write one MULTI per slot.
   * @defaultValue redis://127.0.0.1:6379
   */
  REDIS_URL: z
    .string()
    .refine((v) => {
      const parts = urlList(v, 'redis');
      return parts.length > 0 && parts.every((p) => isUrl(p, ['redis:', 'rediss:']));
    }, { message: 'REDIS_URL must be a URL starting with redis: or rediss: (for example redis://host:6379/0), or several separated by commas for the nodes of a Redis Cluster; fix REDIS_URL' })
    .default('redis://127.0.0.1:6379'),
  /**
   * Port of the supervisor's `/health` and `/metrics` server (0 picks a free one). A port already in
   * use stops the start with exit code 2. @defaultValue 9464
   */
  HEALTH_PORT: int('HEALTH_PORT', 0, 65535).default(9464),
  /**
   * Address the `/health` and `/metrics` server listens on; `0.0.0.0` lets Prometheus in another
   * container scrape it. @defaultValue 127.0.0.1
   */
  HEALTH_HOST: z.string().min(1).default('127.0.0.1'),
  /**
   * pino level. Logs are JSON lines. The CLI logs only warnings unless given `--verbose`.
   * @defaultValue info
   */
  LOG_LEVEL: z
    .enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'], {
      error: 'LOG_LEVEL must be one of fatal, error, warn, info, debug, trace, silent',
    })
    .default('info'),
  /**
   * Diagnostics: a directory where each worker writes a V8 CPU profile of its run,
   * `<dir>/<role>-<pid>.cpuprofile`, on a graceful stop. @defaultValue unset (no profile)
   */
  CPU_PROFILE_DIR: z.string().optional(),
  /**
   * Online training. `off` (the default) gives the greedy policy of the model version the tactical
   * workers start with, no experience messages, no trainer and no swaps: the same bars then give the
   * same results, the decisions `npm run eval` measured. With `on` (also `true`, `1`) the tactical
   * actors **sample** their actions for exploration (seeded by model version, symbol and ts) instead
   * of taking the most likely one, and each such result carries `"exploring": true`; each completed
   * transition is published to `tactical_experience`, the supervisor runs the `trainer` worker, and
   * the tactical workers swap in each version the trainer promotes. @defaultValue off
   */
  PIPELINE_TRAINING: bool('PIPELINE_TRAINING').default('off'),
  /**
   * Inference backend of the tactical agents' live decisions. Only `wasm` remains: the WebAssembly
   * SIMD network decides live, and each saved model version still carries its ONNX export for use
   * elsewhere. `onnx` was removed and stops the process at start. @defaultValue wasm
   */
  PIPELINE_INFERENCE: z
    .enum(['wasm'], {
      message:
        'PIPELINE_INFERENCE accepts only wasm: live ONNX inference was removed (the WebAssembly SIMD network decides; ONNX files are still exported with each model version); unset PIPELINE_INFERENCE or set it to wasm',
    })
    .default('wasm'),
  /**
   * Prefix of every Redis key, so that several pipelines can share one Redis. A replay of history
   * needs a fresh prefix (and vhost): a pipeline that already accepted the bars treats them as
   * duplicates. @defaultValue pipeline:
   */
  PIPELINE_REDIS_PREFIX: z
    .string()
    .regex(/^[A-Za-z0-9:_.-]{1,64}$/, 'PIPELINE_REDIS_PREFIX must be 1 to 64 of A-Z a-z 0-9 : _ . -')
    .default('pipeline:'),
  /**
   * Unacknowledged messages each consumer holds (the trainer uses PIPELINE_TRAIN_BATCH_SIZE
   * instead). @defaultValue 256
   */
  PIPELINE_PREFETCH: int('PIPELINE_PREFETCH', 1, 65535).default(256),
  /**
   * Publishes awaiting a broker confirm before publishing waits. @defaultValue 1024
   */
  PIPELINE_MAX_IN_FLIGHT: int('PIPELINE_MAX_IN_FLIGHT', 1, 100000).default(1024),
  /**
   * How long a publish may wait for a channel and its confirm before it is sent again. The CLI
   * uses it as its confirm timeout. @defaultValue 10000
   */
  PIPELINE_PUBLISH_TIMEOUT_MS: int('PIPELINE_PUBLISH_TIMEOUT_MS', 100, 600000).default(10000),
  /**
   * Attempts at a message that keeps failing with a retriable error before it is dead-lettered.
   * Also the `x-delivery-limit` of `integrated_results` and `tactical_experience`; the shard queues get
   * 4 × this as a backstop. Stored in the queues' arguments: fixed per vhost. @defaultValue 10
   */
  PIPELINE_MAX_ATTEMPTS: int('PIPELINE_MAX_ATTEMPTS', 1, 1000).default(10),
  /**
   * First pause before a message that failed with a retriable error is tried again, in place (the
   * channel stays open). It doubles on each further failure of that message, up to 30 s.
   * @defaultValue 500
   */
  PIPELINE_RETRY_DELAY_MS: int('PIPELINE_RETRY_DELAY_MS', 10, 600000).default(500),
  /**
   * How long the 5m bar that completes a 30m bar waits for that bar's strategic context before it
   * is decided with the previous one (`stale`, `context_buffer` in `degraded`). 0 waits without bound:
   * use it for replays and back-tests. @defaultValue 30000
   */
  PIPELINE_CONTEXT_WAIT_MS: int('PIPELINE_CONTEXT_WAIT_MS', 0, 3600000).default(30000),
  /**
   * How long a 30m bar waits for the tactical feedback window it is due before its context is
   * computed without it (`feedback` in the context's `degraded`, `strategic.feedback` in the results').
   * 0 waits without bound (replays). @defaultValue 30000
   */
  PIPELINE_FEEDBACK_WAIT_MS: int('PIPELINE_FEEDBACK_WAIT_MS', 0, 3600000).default(30000),
  /**
   * The context of a symbol's n-th 30m bar uses the tactical feedback window of its (n − lag)-th.
   * 1 uses the freshest feedback but makes the strategic and tactical workers take turns every period
   * (one broker round trip per 30m bar per symbol); the default lets the strategic side run up to 4
   * periods ahead during replays. @defaultValue 4
   */
  PIPELINE_FEEDBACK_LAG: int('PIPELINE_FEEDBACK_LAG', 1, 48).default(4),
  /**
   * Bound of each graceful-shutdown wait (in-flight messages, publisher confirms, a training
   * batch). The supervisor SIGKILLs a worker this + 5 s after its SIGTERM. @defaultValue 15000
   */
  PIPELINE_CLOSE_TIMEOUT_MS: int('PIPELINE_CLOSE_TIMEOUT_MS', 100, 600000).default(15000),
  /**
   * Directory (relative to the working directory) for the pattern stores (`patterns/<symbol>/`),
   * the model registry (`models/`), the state epoch files and, unless GATEWAY_AUDIT_FILE says otherwise,
   * the gateway's audit file. @defaultValue .data
   */
  PIPELINE_DATA_DIR: z.string().min(1).default('.data'),
  /**
   * Type of the pipeline's queues. Classic queues have no delivery count, so the broker's
   * delivery-limit backstop and the dead-lettering of results your consumers keep returning do not
   * exist with them. Stored in the queues' arguments: fixed per vhost. @defaultValue quorum
   */
  PIPELINE_QUEUE_TYPE: z
    .enum(['quorum', 'classic'], { error: 'PIPELINE_QUEUE_TYPE must be quorum or classic' })
    .default('quorum'),
  /**
   * Rolling window over which each circuit breaker counts calls and failures. A breaker opens when
   * more than half of the calls in the window failed, once the window holds 5 calls (2 for the `redis`
   * breaker), and lets a trial call through 5 s later. Long by default because a symbol's bar comes
   * every 5 minutes. @defaultValue 120000
   */
  PIPELINE_BREAKER_WINDOW_MS: int('PIPELINE_BREAKER_WINDOW_MS', 1000, 3600000).default(120000),
  /**
   * Experience transitions per online PPO update. The trainer holds this many messages
   * unacknowledged (it is the trainer's prefetch) but parses at most two batches ahead of training; the
   * rest wait compressed, so a trainer slower than the tactical workers leaves its backlog in the queue,
   * not in its memory. A batch with nothing to train on outside its held-out bars is dead-lettered:
   * raise this. @defaultValue 2048
   */
  PIPELINE_TRAIN_BATCH_SIZE: int('PIPELINE_TRAIN_BATCH_SIZE', 16, 65535).default(2048),
  /**
   * The registry version the tactical agents start with (`v0003`). Empty: the latest promoted
   * version, else the shipped model seeded into a fresh registry, else the seeded initial policy. A
   * version that does not exist stops the tactical worker at start. With PIPELINE_TRAINING on the worker
   * still swaps to each version the trainer promotes, so pin with training off, and pin a promoted
   * version (others can be deleted once PIPELINE_MODEL_KEEP newer ones are saved).
   */
  PIPELINE_MODEL_VERSION: z.string().default(''),
  /**
   * **Resilience testing only.** A file listing stages (`agents`, `pattern_store`, comma or line
   * separated) that then fail on every call, re-read at most every 200 ms while running; `state:<symbol>`
   * fails that symbol's state writes and `crash:<symbol>:5m:<ts>` kills the tactical worker on that bar.
   * Empty: no faults.
   */
  PIPELINE_FAULT_FILE: z.string().default(''),
  /**
   * V8 old-space limit (`--max-old-space-size`) of each worker process. Node otherwise sizes its
   * heap for the machine and collects lazily; a bound keeps a worker's memory near its working set.
   * @defaultValue 256
   */
  PIPELINE_WORKER_HEAP_MB: int('PIPELINE_WORKER_HEAP_MB', 64, 65536).default(256),
  /**
   * Restarts of one worker within a minute after which the supervisor gives up, stops
   * everything and exits 1. @defaultValue 5
   */
  PIPELINE_MAX_RESTARTS_PER_MINUTE: int('PIPELINE_MAX_RESTARTS_PER_MINUTE', 1, 1000).default(5),
  /**
   * How long a process keeps trying at start while RabbitMQ or Redis refuses connections (still
   * starting) before it exits 2. A wrong vhost, password or URL exits at once. @defaultValue 5000
   */
  PIPELINE_STARTUP_WAIT_MS: int('PIPELINE_STARTUP_WAIT_MS', 0, 600000).default(5000),
  /**
   * Patterns kept per symbol's pattern store. Past it, the oldest segment (32,768 patterns) is
   * dropped whole, so a full store holds between this minus 32,768 and this. 0: no limit. Decided by
   * counts only, so a replay drops exactly what the original run dropped (docs/state-and-retention.md).
   * @defaultValue 524288
   */
  PIPELINE_PATTERN_MAX_PER_SYMBOL: int('PIPELINE_PATTERN_MAX_PER_SYMBOL', 0, 100_000_000).default(524_288),
  /**
   * Days of bar time (not of the clock) before a symbol's newest pattern past which its oldest
   * segment is dropped whole. 0: no limit. @defaultValue 0
   */
  PIPELINE_PATTERN_MAX_AGE_DAYS: int('PIPELINE_PATTERN_MAX_AGE_DAYS', 0, 36_500).default(0),
  /**
   * Model versions the registry keeps besides the promoted lineage (every version promoted so far
   * and the ancestors of the current one): the newest this many. Older ones are deleted after each
   * save. @defaultValue 20
   */
  PIPELINE_MODEL_KEEP: int('PIPELINE_MODEL_KEEP', 1, 100_000).default(20),
  /**
   * Tactical and strategic shards: the supervisor runs N tactical and N strategic workers, on
   * queues `tactical_processing.<k>` and `strategic_processing.<k>`, routed by symbol. Above 1 the
   * broker needs the plugin `rabbitmq_consistent_hash_exchange` (without it the workers exit 2 naming
   * it). Change it on a running vhost with `pipeline shards resize N` (docs/scaling.md): once a
   * resize recorded the shard layout in Redis, a process whose PIPELINE_SHARDS contradicts it exits 2.
   * @defaultValue 1
   */
  PIPELINE_SHARDS: int('PIPELINE_SHARDS', 1, 256).default(1),
  /**
   * The shard a tactical or strategic worker serves, 0 to PIPELINE_SHARDS − 1. Unset, the supervisor
   * runs a worker of every shard and sets it for each; set, the supervisor runs that shard only (one
   * tactical and one strategic worker: a container or pod per shard). A second worker of the same
   * shard waits as a hot standby (single active consumer).
   * @defaultValue 0
   */
  PIPELINE_SHARD_INDEX: int('PIPELINE_SHARD_INDEX', 0, 255).default(0),
  /**
   * Deaths of a worker while processing one message after which that message is dead-lettered
   * unprocessed (a poison message). Keep it below PIPELINE_MAX_RESTARTS_PER_MINUTE, so that the
   * pipeline drops the message before the supervisor gives up. @defaultValue 3
   */
  PIPELINE_CRASH_ATTEMPTS: int('PIPELINE_CRASH_ATTEMPTS', 1, 100).default(3),
  /**
   * The roles this process's supervisor runs: a comma-separated subset of strategic, tactical,
   * trainer, gateway, so that a container or pod can run one role (`PIPELINE_ROLES=gateway`). The
   * trainer runs only with online training on. @defaultValue strategic,tactical,trainer,gateway
   */
  PIPELINE_ROLES: z
    .string()
    .refine((v) => v.split(',').every((r) => (ROLE_NAMES as readonly string[]).includes(r.trim())) && v.trim() !== '', {
      message: `PIPELINE_ROLES must be a comma-separated subset of ${ROLE_NAMES.join(',')} (for example gateway or strategic,tactical)`,
    })
    .default(ROLE_NAMES.join(',')),
  /**
   * Address the gateway (HTTP API, WebSocket, live page) listens on. @defaultValue 127.0.0.1
   */
  GATEWAY_HOST: z.string().min(1).default('127.0.0.1'),
  /**
   * Port of the gateway (0 picks a free one). @defaultValue 8080
   */
  GATEWAY_PORT: int('GATEWAY_PORT', 0, 65535).default(8080),
  /**
   * API keys and their roles, `role:key,role:key` (roles `viewer`, `operator`, `admin`; keys 24 to
   * 256 characters of A-Z a-z 0-9 . _ ~ + / = - with at least 10 distinct ones, e.g.
   * `openssl rand -hex 24`; a weaker key stops the start with exit 2). Only their SHA-256
   * hashes are kept; a key is never echoed in an error. Set this or GATEWAY_API_KEYS_FILE, not both.
   * See docs/gateway.md.
   */
  GATEWAY_API_KEYS: z.string().default(''),
  /**
   * A file holding the keys instead, one `role:key` per line (`#` starts a comment).
   */
  GATEWAY_API_KEYS_FILE: z.string().default(''),
  /**
   * PEM certificate file; with GATEWAY_TLS_KEY the gateway serves HTTPS and WSS only. Set both or
   * neither.
   */
  GATEWAY_TLS_CERT: z.string().default(''),
  /**
   * PEM private key file of GATEWAY_TLS_CERT.
   */
  GATEWAY_TLS_KEY: z.string().default(''),
  /**
   * Append-only JSON-lines audit of every changing call. Empty:
   * `<PIPELINE_DATA_DIR>/gateway-audit.jsonl`.
   */
  GATEWAY_AUDIT_FILE: z.string().default(''),
  /**
   * Requests per minute per key (with a burst of the same size); past it the gateway answers
   * 429 with Retry-After. @defaultValue 600
   */
  GATEWAY_RATE_LIMIT_PER_MINUTE: int('GATEWAY_RATE_LIMIT_PER_MINUTE', 1, 10_000_000).default(600),
  /**
   * Largest request body in bytes; larger ones get 413. @defaultValue 1048576
   */
  GATEWAY_BODY_LIMIT_BYTES: int('GATEWAY_BODY_LIMIT_BYTES', 1024, 104_857_600).default(1_048_576),
  /**
   * Recent results kept in memory per symbol for `/api/results` (at most 1,000 are served per
   * request). @defaultValue 1000
   */
  GATEWAY_RESULTS_PER_SYMBOL: int('GATEWAY_RESULTS_PER_SYMBOL', 1, 100_000).default(1000),
  /**
   * Symbols whose recent results the gateway keeps; past it the least recently updated symbol is
   * dropped. @defaultValue 10000
   */
  GATEWAY_MAX_SYMBOLS: int('GATEWAY_MAX_SYMBOLS', 1, 10_000_000).default(10_000),
  /**
   * Bytes a WebSocket client may have unsent before the gateway closes it with 1013 (it never
   * waits for a slow client). @defaultValue 1048576
   */
  GATEWAY_WS_BUFFER_BYTES: int('GATEWAY_WS_BUFFER_BYTES', 1024, 1_073_741_824).default(1_048_576),
  /** Shortest time between two WebSocket flushes: under load each client's frames of this many ms leave in one write; 0 flushes every event-loop turn. @defaultValue 20 */
  GATEWAY_WS_FLUSH_MS: int('GATEWAY_WS_FLUSH_MS', 0, 1000).default(20),
  /**
   * Requests a minute per client address that carry no valid key, counted before the key is
   * checked (past it: 429 with Retry-After). `GET /api/health` is not counted. @defaultValue 60
   */
  GATEWAY_ANON_RATE_LIMIT_PER_MINUTE: int('GATEWAY_ANON_RATE_LIMIT_PER_MINUTE', 1, 10_000_000).default(60),
  /**
   * Comma-separated addresses or CIDR ranges of the proxies in front of the gateway: the client
   * address of a request from one of them is taken from `X-Forwarded-For`. Empty: the peer's
   * address, and `X-Forwarded-For` is ignored.
   */
  GATEWAY_TRUST_PROXY: z
    .string()
    .refine((v) => commaList(v).every((x) => /^[0-9a-fA-F.:]+(\/\d{1,3})?$/.test(x)), {
      message: 'GATEWAY_TRUST_PROXY must be comma-separated IP addresses or CIDR ranges (for example 10.0.0.5,10.1.0.0/16)',
    })
    .default(''),
  /**
   * Size in bytes at which the audit file is rotated (`<file>` → `<file>.1` → …).
   * @defaultValue 104857600
   */
  GATEWAY_AUDIT_MAX_BYTES: int('GATEWAY_AUDIT_MAX_BYTES', 1024, 1_073_741_824).default(104_857_600),
  /** Rotated audit files kept besides the current one; older ones are deleted. @defaultValue 5 */
  GATEWAY_AUDIT_KEEP_FILES: int('GATEWAY_AUDIT_KEEP_FILES', 1, 1000).default(5),
  /**
   * Process calls (`POST /api/strategic/process`, `/api/tactical/process`) run at once, in a pool of worker threads; up to four times as
   * many wait in its queue, past that 503 with Retry-After. @defaultValue 2
   */
  GATEWAY_PROCESS_CONCURRENCY: int('GATEWAY_PROCESS_CONCURRENCY', 1, 64).default(2),
  /** Deadline of one process call, queue time included; past it 504. @defaultValue 10000 */
  GATEWAY_PROCESS_TIMEOUT_MS: int('GATEWAY_PROCESS_TIMEOUT_MS', 1, 600_000).default(10_000),
  /** WebSockets open at once per key (a ticket counts for its key); past it the upgrade gets 429. @defaultValue 16 */
  GATEWAY_WS_MAX_PER_KEY: int('GATEWAY_WS_MAX_PER_KEY', 1, 1_000_000).default(16),
  /** WebSockets open at once in all; past it the upgrade gets 429. @defaultValue 1000 */
  GATEWAY_WS_MAX_TOTAL: int('GATEWAY_WS_MAX_TOTAL', 1, 1_000_000).default(1000),
  /**
   * Milliseconds between two pings to each WebSocket; a socket that has not answered a ping by the
   * next one is closed. @defaultValue 30000
   */
  GATEWAY_WS_PING_MS: int('GATEWAY_WS_PING_MS', 100, 3_600_000).default(30_000),
  /** Seconds a WebSocket ticket (`POST /api/ws-ticket`) stays valid; it opens one socket once. @defaultValue 30 */
  GATEWAY_WS_TICKET_SECONDS: int('GATEWAY_WS_TICKET_SECONDS', 1, 300).default(30),
  /**
   * Longest time a client may take to send a whole request, headers and body; past it the
   * connection is closed. Headers must arrive within the smaller of this and 10 s; an idle
   * keep-alive connection is closed after 5 s. @defaultValue 30000
   */
  GATEWAY_REQUEST_TIMEOUT_MS: int('GATEWAY_REQUEST_TIMEOUT_MS', 1000, 600_000).default(30_000),
  /**
   * The trainer's CPU bound, in percent of one core: after a training batch, C being the trainer's CPU
   * (all threads) since the previous batch ended (the update, and decoding the experience that filled
   * the batch), it rests C × (100 / this − 1) ms, so it averages at most this share of one core even when a core is
   * idle, on top of its lowest scheduling priority (nice 19, SCHED_IDLE where `chrt` exists). The
   * batch's messages are acknowledged before the rest; a backlog waits in the broker. 100 trains
   * without rests. @defaultValue 25
   */
  PIPELINE_TRAINER_CPU_PERCENT: int('PIPELINE_TRAINER_CPU_PERCENT', 1, 100).default(25),
});

/** The validated, frozen configuration every component receives. */
export interface PipelineConfig {
  readonly amqpUrl: string;
  readonly redisUrl: string;
  readonly healthPort: number;
  readonly healthHost: string;
  readonly logLevel: string;
  /** CPU_PROFILE_DIR: where workers write a CPU profile; null for none. */
  readonly cpuProfileDir: string | null;
  readonly training: boolean;
  /** Inference backend of live decisions (PIPELINE_INFERENCE): always the WebAssembly SIMD network. */
  readonly inference: 'wasm';
  readonly redisPrefix: string;
  readonly prefetchCount: number;
  readonly maxInFlight: number;
  readonly publishTimeoutMs: number;
  readonly maxAttempts: number;
  readonly retryDelayMs: number;
  readonly contextWaitMs: number;
  readonly feedbackWaitMs: number;
  readonly feedbackLag: number;
  readonly closeTimeoutMs: number;
  readonly dataDir: string;
  readonly queueType: 'quorum' | 'classic';
  readonly modelVersion: string | null;
  readonly trainBatchSize: number;
  readonly breakerWindowMs: number;
  readonly maxRestartsPerMinute: number;
  readonly faultFile: string | null;
  readonly workerHeapMb: number;
  readonly startupWaitMs: number;
  /** Patterns kept per symbol (0: no limit). */
  readonly patternMaxPerSymbol: number;
  /** Pattern age limit in days of bar time (0: no limit). */
  readonly patternMaxAgeDays: number;
  /** Model versions kept besides the promoted lineage. */
  readonly modelKeep: number;
  readonly shards: number;
  readonly shardIndex: number;
  readonly crashAttempts: number;
  /** Roles the supervisor runs (PIPELINE_ROLES). */
  readonly roles: readonly RoleName[];
  readonly gateway: GatewayConfig;
  /** The trainer's duty cycle: share of one core, 0.01 to 1. */
  readonly trainerCpuShare: number;
}

const KNOWN = new Set(Object.keys(EnvSchema.shape));

/**
 * Names that look like one of ours: `PIPELINE_*`, and names starting with something close to AMQP,
 * REDIS or PIPELINE (`AMPQ_URL`, `REDSI_URL`, `amqp_url`). Other variables (PATH, REDIS_HOST of
 * another program, ...) are none of our business and are never rejected.
 */
const OUR_PREFIXES = ['AMQP', 'REDIS', 'PIPELINE', 'GATEWAY'];

/** Damerau-Levenshtein distance (optimal string alignment), for "did you mean". */
export function editDistance(a: string, b: string): number {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) => Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)));
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      const row = d[i]!;
      const prev = d[i - 1]!;
      row[j] = Math.min(prev[j]! + 1, row[j - 1]! + 1, prev[j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) row[j] = Math.min(row[j]!, d[i - 2]![j - 2]! + 1);
    }
  }
  return d[a.length]![b.length]!;
}

/**
 * For an environment name that is not a setting but looks like a misspelt one, the setting meant
 * (or `''` for an unknown `PIPELINE_*` name with no close match); `null` for names that are not ours.
 */
export function likelyMisspelling(name: string, known: ReadonlySet<string> = KNOWN): string | null {
  if (known.has(name)) return null;
  const upper = name.toUpperCase();
  if (upper !== name && known.has(upper)) return upper; // amqp_url: variables are case-sensitive
  const head = upper.split('_')[0] ?? '';
  const ours =
    upper.startsWith('PIPELINE_') ||
    OUR_PREFIXES.some((p) => editDistance(head, p) <= (p.length > 5 ? 2 : 1) && Math.abs(head.length - p.length) <= 1);
  if (!ours) return null;
  let best: string | null = null;
  let bestDistance = Infinity;
  for (const key of known) {
    const distance = editDistance(upper, key);
    if (distance < bestDistance) {
      best = key;
      bestDistance = distance;
    }
  }
  if (best !== null && bestDistance <= Math.max(2, Math.floor(best.length / 5))) return best;
  return upper.startsWith('PIPELINE_') ? '' : null;
}

/** An IPv4 or IPv6 address as the kubelet writes it into service-link variables; their protocols. */
const LINK_IP = String.raw`(?:\d{1,3}(?:\.\d{1,3}){3}|\[?[0-9A-Fa-f:]+\]?)`;
const LINK_PROTO = '(?:TCP|UDP|SCTP)';

/**
 * Kubernetes injects, for every Service with a cluster IP in a pod's namespace (unless the pod sets
 * `enableServiceLinks: false`), Docker-link style variables named after the Service (upper-cased,
 * `-` → `_`): `<NAME>_SERVICE_HOST=10.96.0.12`, `<NAME>_SERVICE_PORT[_<PORTNAME>]=8080`,
 * `<NAME>_PORT=tcp://10.96.0.12:8080`, `<NAME>_PORT_8080_TCP=tcp://…`, `…_TCP_PROTO=tcp`,
 * `…_TCP_PORT=8080`, `…_TCP_ADDR=10.96.0.12`. A Service named `gateway` thus sets GATEWAY_PORT, one
 * named `pipeline-x` sets PIPELINE_X_SERVICE_HOST. Recognised by name and value together, so that a
 * real setting keeps its checks (`GATEWAY_PORT=80x` is still an error; `GATEWAY_PORT=tcp://…` is a
 * link variable, ignored).
 */
const SERVICE_LINK_PATTERNS: readonly [RegExp, RegExp][] = [
  [/^[A-Z][A-Z0-9_]*_SERVICE_HOST$/, new RegExp(`^${LINK_IP}$`)],
  [/^[A-Z][A-Z0-9_]*_SERVICE_PORT(?:_[A-Z0-9_]+)?$/, /^\d{1,5}$/],
  [/^[A-Z][A-Z0-9_]*_PORT$/, new RegExp(`^(?:tcp|udp|sctp)://${LINK_IP}:\\d{1,5}$`)],
  [new RegExp(`^[A-Z][A-Z0-9_]*_PORT_\\d{1,5}_${LINK_PROTO}$`), new RegExp(`^(?:tcp|udp|sctp)://${LINK_IP}:\\d{1,5}$`)],
  [new RegExp(`^[A-Z][A-Z0-9_]*_PORT_\\d{1,5}_${LINK_PROTO}_PROTO$`), /^(?:tcp|udp|sctp)$/],
  [new RegExp(`^[A-Z][A-Z0-9_]*_PORT_\\d{1,5}_${LINK_PROTO}_PORT$`), /^\d{1,5}$/],
  [new RegExp(`^[A-Z][A-Z0-9_]*_PORT_\\d{1,5}_${LINK_PROTO}_ADDR$`), new RegExp(`^${LINK_IP}$`)],
];

/** Whether `name=value` is a Kubernetes service-link variable (see {@link SERVICE_LINK_PATTERNS}). */
export function isServiceLinkVariable(name: string, value: string | undefined): boolean {
  if (value === undefined) return false;
  return SERVICE_LINK_PATTERNS.some(([n, v]) => n.test(name) && v.test(value));
}

/**
 * The service-link variables of `env` that the configuration ignores and would otherwise have read
 * or rejected (a setting's name, or a name that looks like one: PIPELINE_*, GATEWAY_*, ...), sorted.
 * Link variables of other names (KUBERNETES_SERVICE_HOST, ...) are none of ours and not listed.
 * The supervisor logs them in one warning at start.
 */
export function ignoredServiceLinks(env: NodeJS.ProcessEnv): string[] {
  return Object.keys(env)
    .filter((key) => isServiceLinkVariable(key, env[key]) && (KNOWN.has(key) || likelyMisspelling(key) !== null))
    .sort();
}

/**
 * A copy of this process's environment, for the environment of child processes (workers inherit
 * it, with their own settings on top). The one place outside `loadConfig` that reads process.env.
 */
export function inheritedEnv(): NodeJS.ProcessEnv {
  return { ...process.env };
}

/**
 * Parses the environment once. Throws a {@link ConfigError} whose message is one line naming every
 * bad variable and what is allowed, every unknown `PIPELINE_*` variable, and every variable that
 * looks like a misspelt setting (`AMPQ_URL`: did you mean AMQP_URL?).
 */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): PipelineConfig {
  const problems: string[] = [];
  for (const key of Object.keys(env)) {
    if (isServiceLinkVariable(key, env[key])) continue;
    const meant = likelyMisspelling(key);
    if (meant === '') {
      problems.push(`${key} is not a setting (known: ${[...KNOWN].filter((k) => k.startsWith('PIPELINE_')).join(', ')}); remove or rename it`);
    } else if (meant !== null) {
      problems.push(`${key} is not a setting; did you mean ${meant}? rename it`);
    }
  }
  const picked: Record<string, string> = {};
  for (const key of KNOWN) {
    const value = env[key];
    if (value !== undefined && value !== '' && !isServiceLinkVariable(key, value)) picked[key] = value;
  }
  const parsed = EnvSchema.safeParse(picked);
  if (!parsed.success) {
    for (const issue of parsed.error.issues) {
      const key = String(issue.path[0] ?? '?');
      // Never echo a password: URLs are shown with their credentials masked.
      const shown = key === 'GATEWAY_API_KEYS' ? '***' : (picked[key] ?? '').replace(/\/\/[^@/]*@/g, '//***@');
      problems.push(`${key}=${JSON.stringify(shown)}: ${issue.message}`.replace(/\s*\n\s*/g, ' '));
    }
  }
  if (parsed.success && parsed.data.PIPELINE_SHARD_INDEX >= parsed.data.PIPELINE_SHARDS) {
    problems.push(
      `PIPELINE_SHARD_INDEX=${parsed.data.PIPELINE_SHARD_INDEX}: must be below PIPELINE_SHARDS (${parsed.data.PIPELINE_SHARDS}); shards are numbered from 0`,
    );
  }
  let keys: GatewayKey[] = [];
  if (parsed.success) {
    const e = parsed.data;
    if (e.GATEWAY_API_KEYS !== '' && e.GATEWAY_API_KEYS_FILE !== '') {
      problems.push('GATEWAY_API_KEYS and GATEWAY_API_KEYS_FILE are both set; set only one of them');
    } else if (e.GATEWAY_API_KEYS_FILE !== '') {
      let text: string | null = null;
      try {
        text = readFileSync(e.GATEWAY_API_KEYS_FILE, 'utf8');
      } catch (err) {
        problems.push(`GATEWAY_API_KEYS_FILE=${JSON.stringify(e.GATEWAY_API_KEYS_FILE)}: cannot read it (${(err as NodeJS.ErrnoException).code ?? 'error'}); fix the path or its permissions`);
      }
      if (text !== null) {
        const lines = text.split(/\r?\n/).map((l) => l.trim()).filter((l) => l !== '' && !l.startsWith('#'));
        keys = parseKeys(lines, 'GATEWAY_API_KEYS_FILE', problems);
      }
    } else if (e.GATEWAY_API_KEYS !== '') {
      keys = parseKeys(e.GATEWAY_API_KEYS.split(','), 'GATEWAY_API_KEYS', problems);
    }
    if ((e.GATEWAY_TLS_CERT === '') !== (e.GATEWAY_TLS_KEY === '')) {
      problems.push('GATEWAY_TLS_CERT and GATEWAY_TLS_KEY must be set together (PEM files); set both or neither');
    }
    for (const name of ['GATEWAY_TLS_CERT', 'GATEWAY_TLS_KEY'] as const) {
      if (e[name] !== '' && !existsSync(e[name])) problems.push(`${name}=${JSON.stringify(e[name])}: no such file; give the path of a PEM file`);
    }
  }
  if (problems.length > 0 || !parsed.success) {
    throw new ConfigError(`configuration error: ${problems.join('; ')}`);
  }
  const e = parsed.data;
  return Object.freeze({
    amqpUrl: e.AMQP_URL,
    redisUrl: e.REDIS_URL,
    healthPort: e.HEALTH_PORT,
    healthHost: e.HEALTH_HOST,
    logLevel: e.LOG_LEVEL,
    cpuProfileDir: e.CPU_PROFILE_DIR === undefined || e.CPU_PROFILE_DIR === '' ? null : e.CPU_PROFILE_DIR,
    training: e.PIPELINE_TRAINING === 'on' || e.PIPELINE_TRAINING === 'true' || e.PIPELINE_TRAINING === '1',
    inference: e.PIPELINE_INFERENCE,
    redisPrefix: e.PIPELINE_REDIS_PREFIX,
    prefetchCount: e.PIPELINE_PREFETCH,
    maxInFlight: e.PIPELINE_MAX_IN_FLIGHT,
    publishTimeoutMs: e.PIPELINE_PUBLISH_TIMEOUT_MS,
    maxAttempts: e.PIPELINE_MAX_ATTEMPTS,
    retryDelayMs: e.PIPELINE_RETRY_DELAY_MS,
    contextWaitMs: e.PIPELINE_CONTEXT_WAIT_MS,
    feedbackWaitMs: e.PIPELINE_FEEDBACK_WAIT_MS,
    feedbackLag: e.PIPELINE_FEEDBACK_LAG,
    closeTimeoutMs: e.PIPELINE_CLOSE_TIMEOUT_MS,
    dataDir: e.PIPELINE_DATA_DIR,
    queueType: e.PIPELINE_QUEUE_TYPE,
    modelVersion: e.PIPELINE_MODEL_VERSION === '' ? null : e.PIPELINE_MODEL_VERSION,
    trainBatchSize: e.PIPELINE_TRAIN_BATCH_SIZE,
    breakerWindowMs: e.PIPELINE_BREAKER_WINDOW_MS,
    maxRestartsPerMinute: e.PIPELINE_MAX_RESTARTS_PER_MINUTE,
    faultFile: e.PIPELINE_FAULT_FILE === '' ? null : e.PIPELINE_FAULT_FILE,
    workerHeapMb: e.PIPELINE_WORKER_HEAP_MB,
    startupWaitMs: e.PIPELINE_STARTUP_WAIT_MS,
    patternMaxPerSymbol: e.PIPELINE_PATTERN_MAX_PER_SYMBOL,
    patternMaxAgeDays: e.PIPELINE_PATTERN_MAX_AGE_DAYS,
    modelKeep: e.PIPELINE_MODEL_KEEP,
    shards: e.PIPELINE_SHARDS,
    shardIndex: e.PIPELINE_SHARD_INDEX,
    crashAttempts: e.PIPELINE_CRASH_ATTEMPTS,
    roles: Object.freeze(ROLE_NAMES.filter((r) => e.PIPELINE_ROLES.split(',').map((x) => x.trim()).includes(r))),
    gateway: Object.freeze({
      host: e.GATEWAY_HOST,
      port: e.GATEWAY_PORT,
      keys: Object.freeze(keys),
      tls: e.GATEWAY_TLS_CERT === '' ? null : Object.freeze({ cert: e.GATEWAY_TLS_CERT, key: e.GATEWAY_TLS_KEY }),
      auditFile: e.GATEWAY_AUDIT_FILE === '' ? join(e.PIPELINE_DATA_DIR, 'gateway-audit.jsonl') : e.GATEWAY_AUDIT_FILE,
      rateLimitPerMinute: e.GATEWAY_RATE_LIMIT_PER_MINUTE,
      bodyLimitBytes: e.GATEWAY_BODY_LIMIT_BYTES,
      resultsPerSymbol: e.GATEWAY_RESULTS_PER_SYMBOL,
      maxSymbols: e.GATEWAY_MAX_SYMBOLS,
      wsBufferBytes: e.GATEWAY_WS_BUFFER_BYTES,
      wsFlushMs: e.GATEWAY_WS_FLUSH_MS,
      anonRateLimitPerMinute: e.GATEWAY_ANON_RATE_LIMIT_PER_MINUTE,
      trustProxy: Object.freeze(commaList(e.GATEWAY_TRUST_PROXY)),
      auditMaxBytes: e.GATEWAY_AUDIT_MAX_BYTES,
      auditKeepFiles: e.GATEWAY_AUDIT_KEEP_FILES,
      processConcurrency: e.GATEWAY_PROCESS_CONCURRENCY,
      processTimeoutMs: e.GATEWAY_PROCESS_TIMEOUT_MS,
      wsMaxPerKey: e.GATEWAY_WS_MAX_PER_KEY,
      wsMaxTotal: e.GATEWAY_WS_MAX_TOTAL,
      wsPingMs: e.GATEWAY_WS_PING_MS,
      wsTicketSeconds: e.GATEWAY_WS_TICKET_SECONDS,
      requestTimeoutMs: e.GATEWAY_REQUEST_TIMEOUT_MS,
    }),
    trainerCpuShare: e.PIPELINE_TRAINER_CPU_PERCENT / 100,
  });
}

/** SHA-256 hex of an API key: what the gateway keeps and compares. */
export function hashApiKey(key: string): string {
  return createHash('sha256').update(key, 'utf8').digest('hex');
}

const KEY_PATTERN = /^[A-Za-z0-9._~+/=-]{24,256}$/;
/** Fewest distinct characters a key must hold (`aaaa…` or `abababab…` is not a key). */
const KEY_MIN_DISTINCT = 10;

/**
 * Parses `role:key` entries. Problems name the entry by position only: a key is never echoed, not
 * even a malformed one (it may be a real key with a typo).
 */
function parseKeys(entries: string[], setting: string, problems: string[]): GatewayKey[] {
  const keys: GatewayKey[] = [];
  const seen = new Set<string>();
  entries.forEach((raw, i) => {
    const entry = raw.trim();
    const colon = entry.indexOf(':');
    const role = colon < 0 ? '' : entry.slice(0, colon);
    const key = colon < 0 ? '' : entry.slice(colon + 1);
    if (!(GATEWAY_ROLES as readonly string[]).includes(role)) {
      problems.push(`${setting}: entry ${i + 1} must be role:key with role viewer, operator or admin; fix that entry`);
      return;
    }
    if (!KEY_PATTERN.test(key) || new Set(key).size < KEY_MIN_DISTINCT) {
      problems.push(
        `${setting}: the key of entry ${i + 1} is too weak: a key must be 24 to 256 of A-Z a-z 0-9 . _ ~ + / = - with at least ${KEY_MIN_DISTINCT} distinct characters; use a random key (openssl rand -hex 24)`,
      );
      return;
    }
    const hash = hashApiKey(key);
    if (seen.has(hash)) {
      problems.push(`${setting}: entry ${i + 1} repeats an earlier key; give each key one role`);
      return;
    }
    seen.add(hash);
    keys.push({ role: role as GatewayRole, hash });
  });
  return keys;
}

/**
 * {@link loadConfig} for process entry points: a configuration error is printed as one line (every
 * bad variable and what is allowed) and the process exits 2 ({@link EXIT_STARTUP}) before anything starts.
 */
export function loadConfigOrExit(env: NodeJS.ProcessEnv = process.env): PipelineConfig {
  try {
    return loadConfig(env);
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`${err.message}\n`);
      process.exit(EXIT_STARTUP);
    }
    throw err;
  }
}
