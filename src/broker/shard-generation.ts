/**
 * Generations of the sharded queues, for changing the number of shards (`pipeline shards resize`).
 *
 * A generation is a set of N tactical and N strategic queues with their own rings. Generation 0 has
 * today's names (`tactical_processing.<k>`, `pipeline.tactical.ring`); generation g > 0 has
 * `tactical_processing.g<g>.<k>` and `pipeline.tactical.ring.g<g>`. Context queues
 * (`tactical_context.<k>`) belong to no generation: a 30m bar names its reply queue.
 *
 * The layout (which generation is current, and the one a resize moves to) is recorded in Redis at
 * `<prefix>shards:layout`. No record means generation 0 with PIPELINE_SHARDS shards, as before.
 * A resize goes through two phases, each ended by the operator stopping the pipeline:
 * - `tactical`: 5m bars go to the next generation's tactical queues; the current generation's
 *   tactical and strategic workers run and drain the current tactical queues.
 * - `strategic`: 30m bars and feedback go to the next generation's strategic queues; only the
 *   current strategic workers and the context consumers run, draining the current strategic queues
 *   and every context queue into Redis.
 * Then the next generation becomes current and everything runs on it.
 */

/** A set of shard queues: its number and its shard count. */
export interface ShardGeneration {
  generation: number;
  shards: number;
}

/** Phase of a resize in progress. */
export type ResizePhase = 'tactical' | 'strategic';

/** Which generation is current and, during a resize, the next one and the phase. */
export interface ShardLayout {
  current: ShardGeneration;
  next: ShardGeneration | null;
  phase: ResizePhase | null;
}

/** Redis key of the layout, under the pipeline's prefix. */
export const LAYOUT_KEY = 'shards:layout';

/** The layout of a pipeline that never resized: generation 0 with `shards` shards. */
export function steadyLayout(shards: number): ShardLayout {
  return { current: { generation: 0, shards }, next: null, phase: null };
}

/** The generations whose queues exist in a layout (current first). */
export function generationsOf(layout: ShardLayout): ShardGeneration[] {
  return layout.next === null ? [layout.current] : [layout.current, layout.next];
}

/** The generation whose queues a role's messages are routed to from the pipeline's exchanges. */
export function sourceGeneration(layout: ShardLayout, role: 'tactical' | 'strategic'): ShardGeneration {
  if (layout.next === null || layout.phase === null) return layout.current;
  if (role === 'tactical') return layout.next;
  return layout.phase === 'strategic' ? layout.next : layout.current;
}

/** Context queues `tactical_context.0 .. n-1` that exist in a layout (the largest shard count). */
export function contextShards(layout: ShardLayout): number {
  return Math.max(...generationsOf(layout).map((g) => g.shards));
}

/** The shard count a layout ends with: the one PIPELINE_SHARDS must name. */
export function targetShards(layout: ShardLayout): number {
  return (layout.next ?? layout.current).shards;
}

/**
 * What the workers of a role consume in a layout: the generation of their work queue (null: the
 * tactical workers consume their context queues only) and how many workers run.
 */
export function consumedBy(layout: ShardLayout, role: 'tactical' | 'strategic'): { generation: ShardGeneration | null; workers: number } {
  if (role === 'strategic') return { generation: layout.current, workers: layout.current.shards };
  if (layout.phase === 'strategic') return { generation: null, workers: contextShards(layout) };
  return { generation: layout.current, workers: layout.current.shards };
}

function isGeneration(value: unknown): value is ShardGeneration {
  const g = value as ShardGeneration | null;
  return (
    typeof g === 'object' && g !== null && Number.isInteger(g.generation) && g.generation >= 0 && Number.isInteger(g.shards) && g.shards >= 1
  );
}

/** Parses a stored layout; throws on anything else (a corrupt record must not be guessed around). */
export function parseLayout(raw: string): ShardLayout {
  const value = JSON.parse(raw) as Partial<ShardLayout>;
  const next = value.next ?? null;
  const phase = value.phase ?? null;
  if (!isGeneration(value.current) || (next !== null && !isGeneration(next)) || (phase !== null && phase !== 'tactical' && phase !== 'strategic') || (next === null) !== (phase === null)) {
    throw new Error(`not a shard layout: ${raw}`);
  }
  return { current: value.current, next, phase };
}

/** The part of a Redis client the layout needs. */
export interface LayoutRedis {
  get(key: string): Promise<string | null>;
  set(key: string, value: string): Promise<unknown>;
}

/** The recorded layout, or generation 0 with `shards` shards when none is recorded. */
export async function readLayout(redis: LayoutRedis, prefix: string, shards: number): Promise<ShardLayout> {
  const raw = await redis.get(`${prefix}${LAYOUT_KEY}`);
  return raw === null ? steadyLayout(shards) : parseLayout(raw);
}

/** Records the layout. */
export async function writeLayout(redis: LayoutRedis, prefix: string, layout: ShardLayout): Promise<void> {
  await redis.set(`${prefix}${LAYOUT_KEY}`, JSON.stringify(layout));
}

/** Why a layout and a PIPELINE_SHARDS setting disagree, or null when they agree. */
export function layoutMismatch(layout: ShardLayout, shards: number): string | null {
  const target = targetShards(layout);
  if (target === shards || (layout.phase !== null && shards === contextShards(layout))) return null;
  const what = layout.phase === null ? `the pipeline runs ${target} shards` : `a resize to ${target} shards is under way (phase ${layout.phase})`;
  return `PIPELINE_SHARDS=${shards}: ${what}; set PIPELINE_SHARDS=${target}, or change it with "pipeline shards resize" (see docs/scaling.md)`;
}
