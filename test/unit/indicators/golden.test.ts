/**
 * Every indicator, on long seeded inputs, reproduces the recorded digests of its outputs, its JSON
 * state after every update, its run restored mid-stream, and its answers to malformed state: one
 * bit of difference anywhere fails (see golden-cases.ts for what is fed and digested).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { type GoldenRecord, record, SCENARIOS, SUBJECTS } from './golden-cases';

const golden = JSON.parse(readFileSync(join(__dirname, 'fixtures', 'golden.json'), 'utf8')) as Record<string, GoldenRecord>;

const cases = SUBJECTS.flatMap((s) => Object.keys(SCENARIOS).map((scenario) => [`${s.name} @ ${scenario}`, s, scenario] as const));

describe('indicators match their golden record bit for bit', () => {
  it('records every case that is run, and runs every recorded case', () => {
    expect(Object.keys(golden).sort()).toEqual(cases.map(([key]) => key).sort());
  });

  it.each(cases)('%s', (key, s, scenario) => {
    const got = record(s, SCENARIOS[scenario] as (typeof SCENARIOS)[string]);
    const want = golden[key] as GoldenRecord;
    expect(got.finalState).toBe(want.finalState);
    expect(got.outputs).toEqual(want.outputs);
    expect(got.states).toEqual(want.states);
    // A run restored from JSON at many points gives the same outputs as the uninterrupted one.
    expect(got.resumed).toBe(want.resumed);
    expect(got.rejects).toEqual(want.rejects);
  });

  it('notices a change of one bit in one input', () => {
    const s = SUBJECTS.find((x) => x.name === 'Sma(20)');
    const input = SCENARIOS.walk1e8 as (typeof SCENARIOS)[string];
    const close = [...input.close];
    const i = 1234;
    const buf = Buffer.alloc(8);
    buf.writeDoubleLE(close[i] as number);
    buf[0] = (buf[0] as number) ^ 1;
    close[i] = buf.readDoubleLE();
    const flipped = record(s as NonNullable<typeof s>, { ...input, close });
    const want = golden['Sma(20) @ walk1e8'] as GoldenRecord;
    expect(flipped.outputs).not.toEqual(want.outputs);
    expect(flipped.states).not.toEqual(want.states);
  });
});
