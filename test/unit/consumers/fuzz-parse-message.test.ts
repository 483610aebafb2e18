import fc from 'fast-check';
import { Bar30mSchema, Bar5mSchema, BarSchema } from '../../../schemas/bar.schema';
import { parseMessage } from '../../../src/consumers/parse-message';
import { ValidationError } from '../../../src/errors';
import { barWithExtraFields, FUZZ_SEED, nearValidBar, validBar } from '../../fixtures/fuzz-bars';

/**
 * Property-based tests of the parsing path every bar consumer runs first (parseMessage with the bar
 * schemas). Whatever arrives, parsing either returns a bar that downstream code can use, or throws a
 * ValidationError whose message (it becomes `x-rejection-reason`) is non-empty, bounded and names
 * what to fix. Any other exception would be taken for a bug and poison the symbol.
 */

/** What the result must satisfy for downstream code: the consumers render `ts` as a date in reasons. */
function usable(bar: {
  ts: number;
  open: number;
  high: number;
  low: number;
  close: number;
  volume: number;
}): void {
  expect(() => new Date(bar.ts).toISOString()).not.toThrow();
  expect(() => new Date(bar.ts + 1_800_000).toISOString()).not.toThrow();
  for (const v of [bar.open, bar.high, bar.low, bar.close])
    expect(v > 0 && Number.isFinite(v)).toBe(true);
  expect(bar.volume >= 0 && Number.isFinite(bar.volume)).toBe(true);
}

/** Runs the parser; returns the rejection reason, or null when the body was accepted. */
function reasonFor(
  body: Buffer | string,
  schema: typeof Bar5mSchema | typeof Bar30mSchema = Bar5mSchema,
): string | null {
  try {
    const bar = parseMessage(typeof body === 'string' ? Buffer.from(body, 'utf8') : body, schema);
    usable(bar);
    return null;
  } catch (err) {
    if (!(err instanceof ValidationError)) throw err;
    expect(err.retriable).toBe(false);
    expect(err.message.trim().length).toBeGreaterThan(10);
    // It travels as an AMQP header: keep it short enough to read and to fit.
    expect(err.message.length).toBeLessThanOrEqual(1000);
    return err.message;
  }
}

describe('bar parsing under fuzzed input', () => {
  it('accepts every valid bar unchanged', () => {
    fc.assert(
      fc.property(validBar, (bar) => {
        expect(parseMessage(Buffer.from(JSON.stringify(bar)), Bar5mSchema)).toEqual(bar);
      }),
      { seed: FUZZ_SEED, numRuns: 500 },
    );
  });

  it('rejects arbitrary bytes with a reason, and never throws anything else', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 400 }), (bytes) => {
        const reason = reasonFor(Buffer.from(bytes));
        expect(reason).toMatch(/^(body is not valid JSON|schema validation failed: )/);
      }),
      { seed: FUZZ_SEED, numRuns: 1500 },
    );
  });

  it('rejects arbitrary JSON with a reason that names a field or the body', () => {
    fc.assert(
      fc.property(
        fc.jsonValue({ maxDepth: 3 }),
        fc.constantFrom(Bar5mSchema, Bar30mSchema),
        (value, schema) => {
          const reason = reasonFor(JSON.stringify(value) ?? 'null', schema);
          expect(reason).toMatch(
            /^schema validation failed: (\(body\)|symbol|timeframe|ts|open|high|low|close|volume|bars)/,
          );
        },
      ),
      { seed: FUZZ_SEED, numRuns: 1500 },
    );
  });

  it('rejects JSON objects with the bar fields but arbitrary values, naming a field', () => {
    const anyValue = fc.oneof(
      fc.jsonValue({ maxDepth: 1 }),
      fc.double(),
      fc.integer({ min: -1e15, max: 1e16 }),
    );
    const loose = fc.record(
      {
        symbol: anyValue,
        timeframe: fc.oneof(anyValue, fc.constant('5m')),
        ts: anyValue,
        open: anyValue,
        high: anyValue,
        low: anyValue,
        close: anyValue,
        volume: anyValue,
      },
      { requiredKeys: [] },
    );
    fc.assert(
      fc.property(loose, (value) => {
        const reason = reasonFor(JSON.stringify(value));
        // Accepted, or rejected with a reason that names the field.
        expect(reason === null || /symbol|timeframe|ts|open|high|low|close|volume/.test(reason)).toBe(true);
      }),
      { seed: FUZZ_SEED, numRuns: 1500 },
    );
  });

  it('rejects a bar with one field made wrong, naming that field', () => {
    const kinds = new Set<string>();
    fc.assert(
      fc.property(nearValidBar, ({ kind, field, body }) => {
        kinds.add(kind);
        const reason = reasonFor(body);
        expect({ kind, rejected: reason !== null }).toEqual({ kind, rejected: true });
        expect(reason).toContain(field);
      }),
      { seed: FUZZ_SEED, numRuns: 3000 },
    );
    // Every kind of damage was tried (a generator that silently stopped producing one would hide it).
    expect(kinds.size).toBe(14);
  });

  it('accepts extra fields and drops them (the contract grows by adding fields)', () => {
    fc.assert(
      fc.property(barWithExtraFields, ({ bar, body }) => {
        expect(parseMessage(Buffer.from(body), Bar5mSchema)).toEqual(bar);
        expect(BarSchema.parse(JSON.parse(body))).toEqual(bar);
      }),
      { seed: FUZZ_SEED, numRuns: 500 },
    );
  });
});
