import { createHash } from 'node:crypto';
import {
  decodeExperienceFrame,
  encodeExperienceFrame,
  EXPERIENCE_FRAME_HEADER_BYTES,
  EXPERIENCE_FRAME_RECORD_BYTES,
  ExperienceFrameError,
  INDICATOR_KEYS,
} from '../../../schemas/experience-frame';
import { ExperienceBatchSchema } from '../../../schemas/experience.schema';
import { IndicatorsSchema } from '../../../schemas/integrated-result.schema';
import { parseMessage } from '../../../src/consumers/parse-message';
import type { ExperienceTransition } from '../../../src/flows/agent-stage';
import { experience } from '../../fixtures/experience';

/** A transition with every strategic input set (the fixture's have none), values not float32-exact where float64 is promised. */
function withStrategic(t: ExperienceTransition, k: number): ExperienceTransition {
  return {
    ...t,
    done: k === 1,
    model_version: k === 2 ? null : t.model_version,
    market: {
      ...t.market,
      strategic: {
        regime_probabilities: k === 3 ? null : { BULL: 0.1 + 1e-12, BEAR: 0.2, SIDEWAYS: 0.30000000000000004, VOLATILE: 0.39999999999999997 - 1e-12 },
        uncertainty: k === 4 ? null : 0.123456789012345,
        confidence: (['LOW', 'MEDIUM', 'HIGH', null] as const)[k % 4] ?? null,
        similar_patterns:
          k === 5 ? null : { k: 20 + k, mean_forward_return: k === 6 ? null : -0.0012345678901234, up_fraction: k === 7 ? null : 0.55, mean_distance: k === 8 ? null : 1.234567890123 },
      },
    },
  };
}

/** What the JSON path gives the trainer for these transitions (a JSON batch, as the consumer parses it). */
function viaJson(transitions: readonly ExperienceTransition[]): unknown[] {
  return parseMessage(Buffer.from(JSON.stringify({ v: 1, transitions })), ExperienceBatchSchema).transitions;
}

function sample(): ExperienceTransition[] {
  const base = [...experience(['AAA', 'BB.B'], 12, 11)];
  return [...base.slice(0, 14), ...base.slice(14).map((t, k) => withStrategic(t, k))];
}

describe('experience frame', () => {
  it('decodes to exactly what the JSON path gives the trainer, global state rebuilt', () => {
    const transitions = sample();
    const frame = encodeExperienceFrame(transitions);
    const decoded = decodeExperienceFrame(frame);
    expect(decoded).toStrictEqual(viaJson(transitions));
    for (const t of decoded) expect(t.global_state).toEqual([...t.observations.tactical, ...t.observations.risk, ...t.observations.execution]);
    // no global_state on the wire: header + string table + fixed records
    const strings = 2 + 3 + 2 + 4 + 2 + 'initial-1'.length;
    expect(frame.length).toBe(EXPERIENCE_FRAME_HEADER_BYTES + strings + transitions.length * EXPERIENCE_FRAME_RECORD_BYTES);
  });

  it('turns -0 into 0 as JSON does', () => {
    const [t] = experience(['AAA'], 1, 1);
    const risk = t!.observations.risk.map(() => -0);
    const { tactical, execution } = t!.observations;
    const z = { ...t!, reward: -0, observations: { tactical, risk, execution }, global_state: [...tactical, ...risk, ...execution] };
    expect(decodeExperienceFrame(encodeExperienceFrame([z]))).toStrictEqual(viaJson([z]));
  });

  // The schema test: the layout the module comment documents, fixed. A change of layout must bump
  // EXPERIENCE_FRAME_VERSION (and update this digest).
  it('keeps the documented layout', () => {
    expect(INDICATOR_KEYS).toEqual(Object.keys(IndicatorsSchema.shape));
    const [t] = experience(['AAA'], 1, 7);
    const frame = encodeExperienceFrame([t!]);
    expect([...frame.subarray(0, 16)]).toEqual([0x50, 0x58, 0x46, 1, 1, 0, 0, 0, 2, 0, 23, 10, 10, 11, 412 & 0xff, 412 >> 8]);
    const dv = new DataView(frame.buffer, frame.byteOffset, frame.byteLength);
    const r = 16 + 2 + 3 + 2 + 'initial-1'.length;
    expect(frame.toString('utf8', 18, 21)).toBe('AAA');
    expect(dv.getUint16(r, true)).toBe(0);
    expect(dv.getUint16(r + 2, true)).toBe(1);
    expect([frame[r + 4], frame[r + 5], frame[r + 6]]).toEqual([t!.actions.tactical, t!.actions.risk, t!.actions.execution]);
    expect(dv.getFloat32(r + 12, true)).toBe(t!.log_probs.tactical);
    expect(dv.getFloat64(r + 24, true)).toBe(t!.ts);
    expect(dv.getFloat64(r + 32, true)).toBe(t!.reward);
    expect(dv.getFloat64(r + 64, true)).toBe(t!.market.bar.close);
    expect(dv.getFloat64(r + 80 + 8 * 10, true)).toBe(t!.market.indicators.atr14 ?? NaN);
    expect(dv.getFloat32(r + 240, true)).toBe(t!.observations.tactical[0]);
    expect(dv.getFloat32(r + 408, true)).toBe(t!.observations.execution[9]);
    expect(createHash('sha256').update(frame).digest('hex')).toBe('63b951e79a10430001ab4857e885124c7b348077bd5ca4929ad8318d0cbd4ffe');
  });

  describe('rejects with a reason a person can act on', () => {
    const good = (): Buffer => encodeExperienceFrame(experience(['AAA'], 3, 2));
    const recordAt = 16 + 2 + 3 + 2 + 'initial-1'.length;
    const cases: [string, (b: Buffer) => Buffer, RegExp][] = [
      ['an unknown version', (b) => ((b[3] = 2), b), /experience frame version 2 is not supported: this trainer reads version 1/],
      ['not a frame (JSON)', () => Buffer.from('{"v":1,"transitions":[]}'), /not an experience frame/],
      ['a truncated frame', (b) => b.subarray(0, b.length - 1), /must be \d+ bytes, got/],
      ['trailing bytes', (b) => Buffer.concat([b, Buffer.alloc(4)]), /must be \d+ bytes, got/],
      ['other observation sizes', (b) => ((b[10] = 24), b), /layout differs.*24\/10\/10/],
      ['no transitions', (b) => b.subarray(0, 16).fill(0, 4, 8), /holds no transitions/],
      ['an action out of range', (b) => ((b[recordAt + 5] = 4), b), /transition 0: actions.risk must be an action index 0..3, got 4/],
      ['a positive log-probability', (b) => (b.writeFloatLE(0.5, recordAt + 12), b), /log_probs.tactical must be a finite log-probability \(<= 0\), got 0.5/],
      ['a NaN observation', (b) => (b.writeFloatLE(NaN, recordAt + 240 + 4 * 30), b), /observation 30 must be finite/],
      ['a symbol index outside the table', (b) => (b.writeUInt16LE(7, recordAt), b), /symbol index 7 is outside the string table/],
      ['a bad bar', (b) => (b.writeDoubleLE(-1, recordAt + 56), b), /market.bar.low must be a finite number greater than 0/],
      ['an infinite reward', (b) => (b.writeDoubleLE(Infinity, recordAt + 32), b), /reward must be finite/],
      ['unknown flags', (b) => ((b[recordAt + 7] = 8), b), /unknown flag bits/],
      ['reserved bytes set', (b) => ((b[recordAt + 10] = 1), b), /reserved bytes/],
      ['a probability above 1', (b) => ((b[recordAt + 7] = 2), b.writeDoubleLE(1.5, recordAt + 200), b), /uncertainty must be in \[0, 1\] or null, got 1.5/],
    ];
    it.each(cases)('%s', (_name, corrupt, message) => {
      const frame = corrupt(good());
      expect(() => decodeExperienceFrame(frame)).toThrow(ExperienceFrameError);
      expect(() => decodeExperienceFrame(frame)).toThrow(message);
    });
  });
});
