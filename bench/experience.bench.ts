/**
 * The experience wire formats side by side (issue 26 item 3), in one process, no broker: for the
 * same transitions (the seeded initial policy exploring a synthetic market, every strategic input
 * set, as with a strategic worker running), per transition:
 *
 * - `json+deflate`: what the tactical workers sent before: `JSON.stringify` of the batch and raw
 *   DEFLATE level 1 (encode); inflate, `JSON.parse` and the zod batch schema (decode, the trainer);
 * - `frame`: the binary experience frame (schemas/experience-frame.ts), encode and decode with its
 *   validation;
 * - `frame+deflate`: the frame compressed the same way, to see whether DEFLATE pays.
 *
 * Batches of BENCH_EXP_BATCHES transitions (4,64,256: what the batcher sends at a few hundred bars/s,
 * and its cap), formats interleaved in BENCH_EXP_ROUNDS (5) rounds; medians of the rounds. Process CPU
 * (the DEFLATE here is synchronous; the batcher ran it on libuv's pool: the same CPU, another thread).
 * Prints one line per figure and a final JSON line.
 *
 * `npm run bench -- experience`
 */
import { loadavg } from 'node:os';
import { deflateRawSync, inflateRawSync } from 'node:zlib';
import { decodeExperienceFrame, encodeExperienceFrame } from '../schemas/experience-frame';
import { ExperienceBatchSchema } from '../schemas/experience.schema';
import { parseMessage } from '../src/consumers/parse-message';
import type { ExperienceTransition } from '../src/flows/agent-stage';
import type { StrategicInput } from '../src/learning/features';
import { median } from '../src/util/quantile';
import { experience } from '../test/fixtures/experience';

const BATCHES = (process.env.BENCH_EXP_BATCHES ?? '4,64,256').split(',').map(Number);
const ROUNDS = Number(process.env.BENCH_EXP_ROUNDS ?? 5);
/** Transitions encoded and decoded per format per round (per batch size). */
const PER_ROUND = Number(process.env.BENCH_EXP_TRANSITIONS ?? 4096);

/** The strategic input of a symbol's i-th bar: every field set and varying, as with a strategic worker running. */
function strategicAt(i: number): StrategicInput {
  return {
    regime_probabilities: { BULL: 0.61 - (i % 7) / 100, BEAR: 0.12, SIDEWAYS: 0.2 + (i % 7) / 100, VOLATILE: 0.07 },
    uncertainty: 0.3127 + (i % 11) / 1000,
    confidence: (['LOW', 'MEDIUM', 'HIGH'] as const)[i % 3]!,
    similar_patterns: { k: 20, mean_forward_return: 0.00131 * Math.sin(i), up_fraction: 0.55, mean_distance: 1.7 + i / 997 },
  };
}

/** `n` transitions: markets of 540 bars (499 transitions each after the warm-up), seeds 100, 101, ... */
function transitions(n: number): ExperienceTransition[] {
  const symbols = Array.from({ length: Math.ceil(n / 499) }, (_, s) => `SYM${s}`);
  return experience(symbols, 499, 100, strategicAt).slice(0, n);
}

/** Process CPU in µs (one thread does the work here; the GC's helper threads count too, as they would in the worker). */
function cpuUs(): number {
  const u = process.cpuUsage();
  return u.user + u.system;
}

interface Format {
  name: string;
  encode: (batch: ExperienceTransition[]) => Buffer;
  decode: (body: Buffer) => unknown[];
}

const FORMATS: Format[] = [
  {
    name: 'json+deflate',
    encode: (batch) => deflateRawSync(Buffer.from(JSON.stringify({ v: 1, transitions: batch })), { level: 1 }),
    decode: (body) => parseMessage(inflateRawSync(body), ExperienceBatchSchema).transitions,
  },
  { name: 'frame', encode: (batch) => encodeExperienceFrame(batch), decode: (body) => decodeExperienceFrame(body) },
  {
    name: 'frame+deflate',
    encode: (batch) => deflateRawSync(encodeExperienceFrame(batch), { level: 1 }),
    decode: (body) => decodeExperienceFrame(inflateRawSync(body)),
  },
];

const all = transitions(Math.max(...BATCHES, 1024));
process.stdout.write(`experience formats: ${all.length} transitions, load average ${loadavg().map((l) => l.toFixed(2)).join(' ')}\n`);
const summary: Record<string, unknown>[] = [];
for (const size of BATCHES) {
  const batches: ExperienceTransition[][] = [];
  for (let i = 0; i + size <= all.length && batches.length * size < PER_ROUND; i += size) batches.push(all.slice(i, i + size));
  while (batches.length * size < PER_ROUND) batches.push(...batches.slice(0, Math.ceil((PER_ROUND - batches.length * size) / size)));
  const count = batches.length * size;
  const figures = new Map<string, { enc: number[]; dec: number[]; bytes: number }>();
  for (const f of FORMATS) figures.set(f.name, { enc: [], dec: [], bytes: 0 });
  // Warm-up, and the bodies each format decodes.
  const bodies = new Map<string, Buffer[]>();
  for (const f of FORMATS) {
    const b = batches.map((batch) => f.encode(batch));
    b.forEach((body) => f.decode(body));
    bodies.set(f.name, b);
    figures.get(f.name)!.bytes = b.reduce((a, x) => a + x.length, 0) / count;
  }
  for (let round = 0; round < ROUNDS; round++) {
    for (const f of round % 2 === 0 ? FORMATS : [...FORMATS].reverse()) {
      const fig = figures.get(f.name)!;
      let t0 = cpuUs();
      for (const batch of batches) f.encode(batch);
      fig.enc.push((cpuUs() - t0) / count);
      const b = bodies.get(f.name)!;
      t0 = cpuUs();
      for (const body of b) f.decode(body);
      fig.dec.push((cpuUs() - t0) / count);
    }
  }
  for (const f of FORMATS) {
    const fig = figures.get(f.name)!;
    const row = { batch: size, format: f.name, encode_us: +median(fig.enc).toFixed(2), decode_us: +median(fig.dec).toFixed(2), bytes: Math.round(fig.bytes) };
    summary.push(row);
    process.stdout.write(
      `batch ${String(size).padStart(3)}  ${f.name.padEnd(13)}  encode ${row.encode_us.toFixed(2).padStart(6)} µs/transition  decode ${row.decode_us.toFixed(2).padStart(6)} µs/transition  ${String(row.bytes).padStart(5)} bytes/transition\n`,
    );
  }
}
process.stdout.write(`load average after ${loadavg().map((l) => l.toFixed(2)).join(' ')}\n`);
process.stdout.write(JSON.stringify({ bench: 'experience', rounds: ROUNDS, results: summary }) + '\n');
