/**
 * Detects that Redis lost the pipeline's state (a restart without persistence, a FLUSHALL, a failover
 * to an empty or lagging replica, a restore of an older snapshot). See docs/redis-loss.md.
 *
 * Two marks, each kept both in Redis and in a durable file of the data directory (which must survive
 * what Redis does not: it also holds the models and the pattern store):
 * - the **epoch**, a random id created when a pipeline first starts, in `<prefix>epoch` and in
 *   `<dataDir>/state-epoch`. Redis holding no epoch, or another one, while the file names one: Redis
 *   lost everything (or is not this pipeline's Redis).
 * - a **sequence**, `<prefix>epoch:seq`, that each running worker increments about every second and
 *   then records in `<dataDir>/state-seq.<name>` (fsynced). Redis holding a smaller value than the
 *   file: Redis went back in time and lost writes it had acknowledged before that increment.
 *
 * Writes to the files are atomic (temporary file, fsync, rename, fsync of the directory).
 */
import { randomBytes } from 'node:crypto';
import {
  closeSync,
  fsyncSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  renameSync,
  writeSync,
} from 'node:fs';
import { join } from 'node:path';
import type Redis from 'ioredis';

/** Options of {@link StateEpochStore}. */
export interface StateEpochStoreOptions {
  /** Prefix of every Redis key (`PIPELINE_REDIS_PREFIX`). */
  prefix: string;
  /** The data directory (`PIPELINE_DATA_DIR`); must be persistent. */
  dataDir: string;
  /**
   * Who records the sequence: one file per name (`state-seq.<name>`), so that workers never write
   * the same file. Null for a reader (the CLI). @defaultValue null
   */
  name?: string | null;
}

/** What Redis holds under `<prefix>epoch`. */
export interface EpochRecord {
  /** The current epoch. */
  id: string;
  /** When it was created (ISO 8601). */
  createdAt: string;
  /**
   * Earlier epochs whose loss an operator accepted (`pipeline state accept-loss`); `*` when Redis
   * held no epoch then (any durable epoch adopts this one).
   */
  accepted: string[];
}

/** The result of {@link StateEpochStore.verify}. */
export type EpochStatus =
  | {
      kind: 'intact';
      epoch: string;
      /** The sequence Redis holds. */
      seq: number;
      /** How the epoch came to be: existing, created now (first start), or adopted from Redis. */
      how: 'existing' | 'created' | 'adopted' | 'accepted';
    }
  | {
      kind: 'lost';
      /** `missing`: no epoch in Redis; `different`: another one; `older`: Redis went back in time. */
      cause: 'missing' | 'different' | 'older';
      /** The epoch the durable file names. */
      durableEpoch: string;
      /** The epoch Redis holds, if any. */
      redisEpoch: string | null;
      /** One sentence for /health and the CLI. */
      message: string;
    };

const EPOCH_FILE = 'state-epoch';
/** In {@link EpochRecord.accepted}: the loss was accepted over a Redis holding no epoch at all. */
const ANY_LOST_EPOCH = '*';

/** Reads and checks the epoch; all I/O in its methods. Emits no events. */
export class StateEpochStore {
  readonly epochKey: string;
  readonly seqKey: string;
  readonly epochFile: string;
  private readonly seqFile: string | null;

  constructor(
    private readonly redis: Redis,
    private readonly options: StateEpochStoreOptions,
  ) {
    this.epochKey = `${options.prefix}epoch`;
    this.seqKey = `${options.prefix}epoch:seq`;
    this.epochFile = join(options.dataDir, EPOCH_FILE);
    const name = options.name ?? null;
    if (name !== null && !/^[A-Za-z0-9_.-]+$/.test(name))
      throw new RangeError(`bad state-seq name ${JSON.stringify(name)}`);
    this.seqFile = name === null ? null : join(options.dataDir, `state-seq.${name}`);
  }

  /** The epoch the durable file names, or null if there is none yet. */
  readDurableEpoch(): string | null {
    const raw = readOptional(this.epochFile);
    if (raw === null) return null;
    const parsed = JSON.parse(raw) as { epoch?: unknown };
    if (typeof parsed.epoch !== 'string' || parsed.epoch === '')
      throw new Error(`${this.epochFile} holds no epoch; delete it only if Redis is intact`);
    return parsed.epoch;
  }

  /** What Redis holds under `<prefix>epoch` and `<prefix>epoch:seq`. */
  async readRedis(): Promise<{ record: EpochRecord | null; seq: number }> {
    const [rawRecord, rawSeq] = await this.redis.mget(this.epochKey, this.seqKey);
    return {
      record:
        rawRecord === null || rawRecord === undefined
          ? null
          : (JSON.parse(rawRecord) as EpochRecord),
      seq: Number(rawSeq ?? 0),
    };
  }

  /**
   * Compares Redis with the durable file. With `write` (workers), a first start creates the epoch in
   * both places, a missing file adopts Redis's epoch (a new data directory next to an intact Redis),
   * and an epoch whose loss an operator accepted is replaced by the new one; without it (the CLI),
   * nothing is written.
   */
  async verify(write: boolean): Promise<EpochStatus> {
    const durable = this.readDurableEpoch();
    let { record, seq } = await this.readRedis();
    if (durable === null) {
      if (!write) {
        return record === null
          ? { kind: 'intact', epoch: '', seq, how: 'created' }
          : { kind: 'intact', epoch: record.id, seq, how: 'adopted' };
      }
      let how: 'created' | 'adopted' = 'adopted';
      if (record === null) {
        const fresh: EpochRecord = {
          id: newEpochId(),
          createdAt: new Date().toISOString(),
          accepted: [],
        };
        // NX: workers starting together agree on the first one written.
        if ((await this.redis.set(this.epochKey, JSON.stringify(fresh), 'NX')) === 'OK')
          how = 'created';
        ({ record, seq } = await this.readRedis());
        if (record === null)
          throw new Error(`${this.epochKey} vanished while it was being created`);
      }
      this.writeDurableEpoch(record.id);
      return { kind: 'intact', epoch: record.id, seq, how };
    }
    if (record === null) {
      return lost(
        'missing',
        durable,
        null,
        `Redis holds no epoch under ${this.epochKey} but ${this.epochFile} names epoch ${durable}: Redis lost the pipeline's state (restarted without persistence, flushed, or failed over to an empty replica)`,
      );
    }
    if (record.id !== durable) {
      if (record.accepted.includes(durable) || record.accepted.includes(ANY_LOST_EPOCH)) {
        if (write) this.writeDurableEpoch(record.id);
        return { kind: 'intact', epoch: record.id, seq, how: 'accepted' };
      }
      return lost(
        'different',
        durable,
        record.id,
        `Redis holds epoch ${record.id} under ${this.epochKey} but ${this.epochFile} names epoch ${durable}: this Redis is not the one holding the pipeline's state (wrong REDIS_URL or PIPELINE_REDIS_PREFIX, or a Redis restored from another pipeline)`,
      );
    }
    const recorded = this.readDurableSeq(durable);
    if (seq < recorded) {
      return lost(
        'older',
        durable,
        record.id,
        `Redis holds sequence ${seq} under ${this.seqKey} but ${this.seqFile ?? 'this worker'} recorded ${recorded}: Redis went back in time and lost writes it had acknowledged (a failover to a lagging replica, or a restore of an older snapshot)`,
      );
    }
    return { kind: 'intact', epoch: durable, seq, how: 'existing' };
  }

  /**
   * Increments the sequence in Redis, then records the new value in this worker's file. Call it only
   * after {@link verify} said intact.
   */
  async advance(epoch: string): Promise<number> {
    const seq = await this.redis.incr(this.seqKey);
    if (this.seqFile !== null) writeAtomic(this.seqFile, `${JSON.stringify({ epoch, seq })}\n`);
    return seq;
  }

  /**
   * Starts a new epoch after a loss an operator accepted: deletes every key under the prefix (so that
   * every symbol starts over from nothing, consistently across stages) and writes the new epoch,
   * listing the lost ones as accepted so that workers adopt it. Returns the new epoch.
   */
  async acceptLoss(): Promise<{ epoch: string; deletedKeys: number; replaced: string[] }> {
    const { record } = await this.readRedis();
    const durable = this.readDurableEpoch();
    // Redis holding no epoch at all: the lost one is unknown here (no data directory next to this
    // command, say), so every worker whose epoch Redis lost adopts the new one.
    const replaced = [
      ...new Set([
        ...(record?.accepted ?? []),
        ...(record === null ? [ANY_LOST_EPOCH] : [record.id]),
        ...(durable === null ? [] : [durable]),
      ]),
    ];
    let deletedKeys = 0;
    let cursor = '0';
    do {
      const [next, keys] = await this.redis.scan(
        cursor,
        'MATCH',
        `${escapeGlob(this.options.prefix)}*`,
        'COUNT',
        1000,
      );
      cursor = next;
      if (keys.length > 0) deletedKeys += await this.redis.unlink(...keys);
    } while (cursor !== '0');
    const fresh: EpochRecord = {
      id: newEpochId(),
      createdAt: new Date().toISOString(),
      accepted: replaced,
    };
    await this.redis.set(this.epochKey, JSON.stringify(fresh));
    if (durable !== null) this.writeDurableEpoch(fresh.id);
    return { epoch: fresh.id, deletedKeys, replaced };
  }

  /** The sequence this worker recorded for `epoch`; for a reader (the CLI), the highest any worker did. */
  private readDurableSeq(epoch: string): number {
    const files =
      this.seqFile !== null
        ? [this.seqFile]
        : listOptional(this.options.dataDir)
            .filter((f) => f.startsWith('state-seq.') && !f.endsWith('.tmp'))
            .map((f) => join(this.options.dataDir, f));
    let max = 0;
    for (const file of files) {
      const raw = readOptional(file);
      if (raw === null) continue;
      const parsed = JSON.parse(raw) as { epoch?: unknown; seq?: unknown };
      if (parsed.epoch === epoch && typeof parsed.seq === 'number') max = Math.max(max, parsed.seq);
    }
    return max;
  }

  private writeDurableEpoch(epoch: string): void {
    writeAtomic(
      this.epochFile,
      `${JSON.stringify({ epoch, writtenAt: new Date().toISOString() })}\n`,
    );
  }
}

function lost(
  cause: 'missing' | 'different' | 'older',
  durableEpoch: string,
  redisEpoch: string | null,
  message: string,
): EpochStatus {
  return { kind: 'lost', cause, durableEpoch, redisEpoch, message };
}

function newEpochId(): string {
  return randomBytes(8).toString('hex');
}

function listOptional(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
}

function readOptional(path: string): string | null {
  try {
    return readFileSync(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  }
}

/** Writes `text` to `path` atomically and durably: temporary file, fsync, rename, fsync the directory. */
export function writeAtomic(path: string, text: string): void {
  const dir = join(path, '..');
  mkdirSync(dir, { recursive: true });
  const tmp = `${path}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  const fd = openSync(tmp, 'w');
  try {
    writeSync(fd, text);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, path);
  const dirFd = openSync(dir, 'r');
  try {
    fsyncSync(dirFd);
  } finally {
    closeSync(dirFd);
  }
}

/** Escapes the glob characters of SCAN MATCH. */
function escapeGlob(text: string): string {
  return text.replace(/[*?[\]\\]/g, '\\$&');
}
