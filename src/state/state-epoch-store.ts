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
 *
 * On a Redis Cluster each master can lose its data on its own, so one mark on one master would miss
 * the loss of another. There the epoch and the sequence are kept in 16 copies, `<prefix>epoch:{eN}` and
 * `<prefix>epoch:seq:{eN}`, whose hash tags put one copy in each block of 1,024 hash slots: every
 * master that serves at least one such block holds a copy (any cluster of up to 16 masters made by
 * `redis-cli --cluster create`, which gives each master one contiguous range). A copy missing, or a
 * sequence smaller than the smallest one recorded, is a loss, as on one Redis.
 */
import { randomBytes } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import type Redis from 'ioredis';
import { writeFileAtomic } from './atomic-file';
import { keySlot } from './keys';

/** Hash tags whose slots fall in each of the 16 blocks of 1,024 slots (e0 ... e15 in block order). */
export const CLUSTER_MARKER_TAGS: readonly string[] = (() => {
  const tags: string[] = [];
  for (let block = 0; block < 16; block++) {
    for (let n = 0; ; n++) {
      const tag = `e${n}`;
      if (Math.floor(keySlot(tag) / 1024) === block) {
        tags.push(tag);
        break;
      }
    }
  }
  return tags;
})();

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
  /** Every copy of the epoch (one on a single Redis, {@link CLUSTER_MARKER_TAGS} on a cluster). */
  private readonly epochKeys: string[];
  /** The sequence copies, same order and slots as {@link epochKeys}. */
  private readonly seqKeys: string[];
  readonly epochFile: string;
  private readonly seqFile: string | null;

  constructor(
    private readonly redis: Redis,
    private readonly options: StateEpochStoreOptions,
  ) {
    if (redis.isCluster) {
      this.epochKeys = CLUSTER_MARKER_TAGS.map((tag) => `${options.prefix}epoch:{${tag}}`);
      this.seqKeys = CLUSTER_MARKER_TAGS.map((tag) => `${options.prefix}epoch:seq:{${tag}}`);
    } else {
      this.epochKeys = [`${options.prefix}epoch`];
      this.seqKeys = [`${options.prefix}epoch:seq`];
    }
    this.epochKey = this.epochKeys[0]!;
    this.seqKey = this.seqKeys[0]!;
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

  /**
   * What Redis holds under `<prefix>epoch` and `<prefix>epoch:seq` (on a cluster: the first copy
   * present, the smallest sequence, and the copies that are missing).
   */
  async readRedis(): Promise<{ record: EpochRecord | null; seq: number; missing: string[]; differing: string[] }> {
    if (!this.redis.isCluster) {
      const [rawRecord, rawSeq] = await this.redis.mget(this.epochKey, this.seqKey);
      return {
        record: rawRecord === null || rawRecord === undefined ? null : (JSON.parse(rawRecord) as EpochRecord),
        seq: Number(rawSeq ?? 0),
        missing: [],
        differing: [],
      };
    }
    // One key per command: the copies live in different slots (and masters).
    const raws = await Promise.all(this.epochKeys.map((key) => this.redis.get(key)));
    const seqs = await Promise.all(this.seqKeys.map((key) => this.redis.get(key)));
    const present = raws.find((raw) => raw !== null) ?? null;
    const record = present === null ? null : (JSON.parse(present) as EpochRecord);
    const missing = this.epochKeys.filter((_, i) => raws[i] === null);
    // A copy naming another epoch: a master restored from another time or pipeline.
    const differing = this.epochKeys.filter((_, i) => raws[i] !== null && (JSON.parse(raws[i]!) as EpochRecord).id !== record?.id);
    return {
      record,
      seq: Math.min(...seqs.map((raw) => Number(raw ?? 0))),
      missing: present === null ? [] : missing,
      differing,
    };
  }

  /** Writes `record` to every copy of the epoch (NX: only where none is). */
  private async fillCopies(record: EpochRecord, nx: boolean): Promise<void> {
    const json = JSON.stringify(record);
    await Promise.all(this.epochKeys.map((key) => (nx ? this.redis.set(key, json, 'NX') : this.redis.set(key, json))));
  }

  /**
   * Compares Redis with the durable file. With `write` (workers), a first start creates the epoch in
   * both places, a missing file adopts Redis's epoch (a new data directory next to an intact Redis),
   * and an epoch whose loss an operator accepted is replaced by the new one; without it (the CLI),
   * nothing is written.
   */
  async verify(write: boolean): Promise<EpochStatus> {
    const durable = this.readDurableEpoch();
    const first = await this.readRedis();
    let { record, seq } = first;
    const { missing, differing } = first;
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
      // A cluster: every master gets its copy (of the one epoch the first copy holds).
      if (this.epochKeys.length > 1) await this.fillCopies(record, true);
      await this.writeDurableEpoch(record.id);
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
    if (differing.length > 0) {
      return lost(
        'different',
        durable,
        record.id,
        `the Redis Cluster's epoch copies disagree (${differing.join(', ')} name another epoch than ${this.epochKey}, ${record.id}; ${this.epochFile} names ${durable}): a master holds data of another time or pipeline (restored from an old snapshot, or the wrong REDIS_URL)`,
      );
    }
    if (missing.length > 0 && record.id === durable) {
      return lost(
        'missing',
        durable,
        record.id,
        `the Redis Cluster holds no epoch under ${missing.join(', ')} (of ${this.epochKeys.length} copies) but ${this.epochFile} names epoch ${durable}: the masters serving those slots lost the pipeline's state (restarted without persistence, or failed over to an empty replica)`,
      );
    }
    if (record.id !== durable) {
      if (record.accepted.includes(durable) || record.accepted.includes(ANY_LOST_EPOCH)) {
        if (write) {
          await this.writeDurableEpoch(record.id);
          if (this.epochKeys.length > 1) await this.fillCopies(record, true);
        }
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

  /** The sequence file's directory was made (once per store, not on every step). */
  private seqDirReady = false;

  /**
   * Increments the sequence in Redis, then records the new value in this worker's file. Call it only
   * after {@link verify} said intact.
   */
  async advance(epoch: string): Promise<number> {
    // On a cluster every copy goes up; the smallest is recorded, so any master that later holds less
    // than it went back in time.
    const seq = Math.min(...(await Promise.all(this.seqKeys.map((key) => this.redis.incr(key)))));
    // Off the event loop: this runs twice a second in every worker, and a synchronous fsync there
    // stalled bars for tens of milliseconds at a time (seen in the tactical worker's profile).
    if (this.seqFile !== null) {
      if (!this.seqDirReady) {
        await mkdir(join(this.seqFile, '..'), { recursive: true });
        this.seqDirReady = true;
      }
      await writeFileAtomic(this.seqFile, `${JSON.stringify({ epoch, seq })}\n`);
    }
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
    // SCAN walks one node: on a cluster, every master; and UNLINK one key at a time (keys of
    // different slots cannot share a command).
    const nodes: Redis[] = this.redis.isCluster ? (this.redis as unknown as { nodes(role: 'master'): Redis[] }).nodes('master') : [this.redis];
    for (const node of nodes) {
      let cursor = '0';
      do {
        const [next, keys] = await node.scan(cursor, 'MATCH', `${escapeGlob(this.options.prefix)}*`, 'COUNT', 1000);
        cursor = next;
        if (keys.length === 0) continue;
        if (this.redis.isCluster) {
          const counts = await Promise.all(keys.map((key) => node.unlink(key)));
          deletedKeys += counts.reduce((a, b) => a + b, 0);
        } else {
          deletedKeys += await node.unlink(...keys);
        }
      } while (cursor !== '0');
    }
    const fresh: EpochRecord = {
      id: newEpochId(),
      createdAt: new Date().toISOString(),
      accepted: replaced,
    };
    await this.fillCopies(fresh, false);
    if (durable !== null) await this.writeDurableEpoch(fresh.id);
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

  private async writeDurableEpoch(epoch: string): Promise<void> {
    await mkdir(join(this.epochFile, '..'), { recursive: true });
    await writeFileAtomic(this.epochFile, `${JSON.stringify({ epoch, writtenAt: new Date().toISOString() })}\n`);
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

/** Escapes the glob characters of SCAN MATCH. */
function escapeGlob(text: string): string {
  return text.replace(/[*?[\]\\]/g, '\\$&');
}
