/**
 * Where a worker's CPU goes, from a V8 CPU profile (`.cpuprofile`, as the workers write them with
 * CPU_PROFILE_DIR): each sample's time is booked to a budget line by the innermost frame of the
 * stack that belongs to the project (src/ or schemas/), or, when none does, by the library or
 * runtime frame at its leaf. Garbage collection and idle time are lines of their own.
 *
 * Used by bench/pipeline.bench.ts for the per-bar budget table; also runnable on any profile:
 * `npx tsx bench/cpu-budget.ts <file.cpuprofile> [bars]` prints the table (µs per bar when `bars`
 * is given) and the 25 heaviest functions by self time.
 */
import { readFileSync } from 'node:fs';

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
}
interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  children?: number[];
}
export interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

/** The budget lines, in the order the table prints them. */
export const BUDGET_LINES = [
  'decode and validate',
  'lane and commit protocol',
  'state serialise and Redis',
  'indicators',
  'context, resample, feedback',
  'agents (forward pass, env)',
  'result build (flow)',
  'encode and publish, confirms',
  'experience',
  'breakers',
  'metrics and events',
  'broker client (amqplib)',
  'startup and module loading',
  'other runtime',
  'garbage collection',
] as const;
export type BudgetLine = (typeof BUDGET_LINES)[number];

/** Functions whose line is not their file's. */
const BY_FUNCTION: Record<string, BudgetLine> = {
  publishEmission: 'encode and publish, confirms',
  publishUntilConfirmed: 'encode and publish, confirms',
  sendUntilConfirmed: 'encode and publish, confirms',
  confirmUntilDone: 'encode and publish, confirms',
  guardCompute: 'lane and commit protocol',
  parseMessage: 'decode and validate',
};

/** Project files by path fragment, first match wins. */
const BY_FILE: [RegExp, BudgetLine][] = [
  [/src\/consumers\/experience-batcher|src\/learning\/transition|experience-frame/, 'experience'],
  [/src\/consumers\/parse-message|schemas\//, 'decode and validate'],
  [/src\/consumers\/bar-commits|src\/consumers\/bar-stage-consumer|src\/util\/keyed-serial-queue|src\/util\/backoff|src\/util\/retry/, 'lane and commit protocol'],
  [/src\/state\//, 'state serialise and Redis'],
  [/src\/indicators\/|src\/flows\/indicator-stage/, 'indicators'],
  [/src\/flows\/context-buffer-flow|src\/flows\/resample-flow|src\/flows\/feedback-flow|src\/util\/periods|src\/flows\/result-gather/, 'context, resample, feedback'],
  [/src\/flows\/agent-stage|src\/learning\//, 'agents (forward pass, env)'],
  [/src\/flows\/tactical-flow/, 'result build (flow)'],
  [/src\/flows\/breakers/, 'breakers'],
  [/src\/observability\//, 'metrics and events'],
  [/src\/broker\/publisher|src\/consumers\/tactical-consumer/, 'encode and publish, confirms'],
  [/src\/broker\//, 'broker client (amqplib)'],
  [/src\/supervisor\/|src\/config\//, 'startup and module loading'],
];

/** Library frames at the leaf, when no project frame is on the stack. */
const BY_LIBRARY: [RegExp, BudgetLine][] = [
  [/node_modules\/amqplib|node_modules\/buffer-more-ints|node_modules\/bitsyntax/, 'broker client (amqplib)'],
  [/node_modules\/ioredis|node_modules\/redis-parser|node_modules\/denque/, 'state serialise and Redis'],
  [/node_modules\/prom-client|node_modules\/pino/, 'metrics and events'],
  [/node_modules\/zod/, 'decode and validate'],
  [/node_modules\/esbuild|node_modules\/tsx|node:internal\/modules/, 'startup and module loading'],
  [/^wasm:/, 'agents (forward pass, env)'],
];

function lineOf(frame: CallFrame): BudgetLine | null {
  if (frame.url.includes('/src/') || frame.url.includes('/schemas/')) {
    const byFn = BY_FUNCTION[frame.functionName];
    if (byFn !== undefined && frame.url.includes('/src/consumers/')) return byFn;
    for (const [re, line] of BY_FILE) if (re.test(frame.url)) return line;
    return 'other runtime';
  }
  return null;
}

/**
 * The profile's busy time (ms) per budget line, its idle time and its total. With `window`, only the
 * samples taken between `fromEndMs` and `toEndMs` before the profile's last sample count (a run
 * inside a longer profile: start-up and shutdown left out).
 */
export function budgetOf(
  profile: CpuProfile,
  window?: { fromEndMs: number; toEndMs: number },
): { lines: Map<BudgetLine, number>; idleMs: number; busyMs: number } {
  const nodes = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const lineCache = new Map<number, BudgetLine | 'idle'>();
  const classify = (id: number): BudgetLine | 'idle' => {
    const cached = lineCache.get(id);
    if (cached !== undefined) return cached;
    const leaf = nodes.get(id)?.callFrame;
    let result: BudgetLine | 'idle' | null = null;
    if (leaf?.functionName === '(idle)') result = 'idle';
    else if (leaf?.functionName === '(garbage collector)') result = 'garbage collection';
    for (let cur: number | undefined = id; result === null && cur !== undefined; cur = parent.get(cur)) {
      const frame = nodes.get(cur)?.callFrame;
      if (frame !== undefined) result = lineOf(frame);
    }
    if (result === null && leaf !== undefined) {
      for (const [re, line] of BY_LIBRARY) if (re.test(leaf.url)) result = line;
    }
    const out = result ?? 'other runtime';
    lineCache.set(id, out);
    return out;
  };
  const lines = new Map<BudgetLine, number>(BUDGET_LINES.map((l) => [l, 0]));
  let idleUs = 0;
  let busyUs = 0;
  let totalUs = 0;
  for (const dt of profile.timeDeltas) totalUs += dt;
  const fromUs = window === undefined ? -Infinity : totalUs - window.fromEndMs * 1000;
  const toUs = window === undefined ? Infinity : totalUs - window.toEndMs * 1000;
  let atUs = 0;
  for (let i = 0; i < profile.samples.length; i++) {
    const dt = profile.timeDeltas[i] ?? 0;
    atUs += dt;
    if (atUs < fromUs || atUs > toUs) continue;
    const line = classify(profile.samples[i] as number);
    if (line === 'idle') idleUs += dt;
    else {
      busyUs += dt;
      lines.set(line, (lines.get(line) ?? 0) + dt);
    }
  }
  for (const [k, v] of lines) lines.set(k, v / 1000);
  return { lines, idleMs: idleUs / 1000, busyMs: busyUs / 1000 };
}

/** The heaviest functions by self time (ms). */
export function topFunctions(profile: CpuProfile, count: number): { name: string; ms: number }[] {
  const nodes = new Map(profile.nodes.map((n) => [n.id, n]));
  const self = new Map<string, number>();
  for (let i = 0; i < profile.samples.length; i++) {
    const frame = nodes.get(profile.samples[i] as number)?.callFrame;
    if (frame === undefined || frame.functionName === '(idle)') continue;
    const where = frame.url.replace(/^.*?\/((?:node_modules\/[^/]+)|src\/.*|schemas\/.*)$/, '$1');
    const name = `${frame.functionName || '(anonymous)'} ${where}`.trim();
    self.set(name, (self.get(name) ?? 0) + (profile.timeDeltas[i] ?? 0));
  }
  return [...self]
    .map(([name, us]) => ({ name, ms: us / 1000 }))
    .sort((a, b) => b.ms - a.ms)
    .slice(0, count);
}

/** The budget as a markdown table: ms and share of busy time, µs per bar when `bars` is given. */
export function budgetTable(budget: ReturnType<typeof budgetOf>, bars?: number): string {
  const rows = [`| line | CPU ms | share | ${bars === undefined ? '' : 'µs per bar |'}`, `| --- | --- | --- |${bars === undefined ? '' : ' --- |'}`];
  for (const line of BUDGET_LINES) {
    const ms = budget.lines.get(line) ?? 0;
    const share = ((100 * ms) / budget.busyMs).toFixed(1);
    rows.push(`| ${line} | ${ms.toFixed(0)} | ${share}% |${bars === undefined ? '' : ` ${((1000 * ms) / bars).toFixed(1)} |`}`);
  }
  rows.push(`| **total busy** | ${budget.busyMs.toFixed(0)} | 100% |${bars === undefined ? '' : ` ${((1000 * budget.busyMs) / bars).toFixed(1)} |`}`);
  return rows.join('\n');
}

if (process.argv[1]?.endsWith('cpu-budget.ts')) {
  const file = process.argv[2];
  if (file === undefined) {
    process.stderr.write('usage: npx tsx bench/cpu-budget.ts <file.cpuprofile> [bars]\n');
    process.exit(2);
  }
  const profile = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
  const bars = process.argv[3] === undefined ? undefined : Number(process.argv[3]);
  const budget = budgetOf(profile);
  process.stdout.write(`${budgetTable(budget, bars)}\n\nidle ${budget.idleMs.toFixed(0)} ms\n\n`);
  for (const f of topFunctions(profile, 25)) process.stdout.write(`${f.ms.toFixed(1).padStart(9)} ms  ${f.name}\n`);
}
