import { SYMBOL_PATTERN } from './bar.schema';
import { EXECUTION_OBS_DIM, RISK_OBS_DIM, TACTICAL_OBS_DIM, type Experience } from './experience.schema';
import type { Indicators } from './integrated-result.schema';
import type { ConfidenceLevel } from './strategic-context.schema';

/**
 * The binary experience frame: a batch of experience transitions as the tactical workers send it
 * to the trainer (content type {@link EXPERIENCE_FRAME_CONTENT_TYPE}), instead of the JSON batch
 * (`application/vnd.pipeline.experience-batch+json`, still accepted). Decoding a frame gives
 * exactly the objects the JSON path gives the trainer for the same transitions, provided their
 * observations and log-probabilities are float32 values, as `makeTransition` makes them (the
 * networks read them as float32 anyway). Little-endian throughout:
 *
 * ```
 * header (16 bytes)
 *   0  4 bytes  magic "PXF" then the version byte (1)
 *   4  u32      N, transitions
 *   8  u16      S, strings in the string table
 *  10  u8 × 4   tactical, risk, execution observation sizes (23, 10, 10), indicator count (11)
 *  14  u16      record size in bytes (412)
 * string table: S × (u16 byte length, UTF-8 bytes): symbols and model versions
 * N records of 412 bytes:
 *   0  u16   symbol (string index)          2  u16  model_version (string index, 0xFFFF = null)
 *   4  u8 × 3  actions tactical, risk, execution
 *   7  u8    flags: 1 done, 2 strategic present (other bits must be 0)
 *   8  u8    strategic confidence: 0 LOW, 1 MEDIUM, 2 HIGH, 255 null
 *   9  u8 × 3  zero
 *  12  f32 × 3  log-probabilities tactical, risk, execution
 *  24  f64   ts                            32  f64  reward
 *  40  f64 × 5  bar open, high, low, close, volume (bar.ts is ts)
 *  80  f64 × 11 indicators in INDICATOR_KEYS order, NaN = null
 * 168  f64 × 4  regime probabilities BULL, BEAR, SIDEWAYS, VOLATILE (all NaN = null)
 * 200  f64   uncertainty (NaN = null)
 * 208  f64 × 4  similar patterns k, mean_forward_return, up_fraction, mean_distance
 *               (k NaN = similar_patterns null; another NaN = that field null)
 * 240  f32 × 43 observations tactical, risk, execution; the critic's global state is their
 *               concatenation and is rebuilt on decode, not sent
 * ```
 *
 * float32 where the trainer reads float32 (observations and log-probabilities go into the
 * networks' Float32Arrays); float64 where it computes in float64 on what it replays: ts (epoch ms
 * need 41 bits, float32 has 24), prices and indicators (the held-out replay rebuilds features and
 * returns from them in float64, so float32 would change replayed decisions and metrics), the reward
 * (summed into returns and advantages in float64) and the strategic inputs (decoded exactly as sent).
 * -0 decodes as 0, as JSON gives it. Not compressed: DEFLATE saved little on float data for its
 * CPU (BENCHMARKS.md, experience frame).
 */
export const EXPERIENCE_FRAME_CONTENT_TYPE = 'application/vnd.pipeline.experience-frame';
export const EXPERIENCE_FRAME_VERSION = 1;
export const EXPERIENCE_FRAME_HEADER_BYTES = 16;
export const EXPERIENCE_FRAME_RECORD_BYTES = 412;
/** The frame's first three bytes, "PXF". */
const MAGIC = [0x50, 0x58, 0x46] as const;
const NULL_STRING = 0xffff;
const MAX_STRINGS = 0xfffe;

/** Order of the indicators in a record. */
export const INDICATOR_KEYS = [
  'sma20',
  'ema12',
  'ema26',
  'rsi14',
  'macd',
  'macd_signal',
  'macd_hist',
  'bb_upper',
  'bb_middle',
  'bb_lower',
  'atr14',
] as const satisfies readonly (keyof Indicators)[];

const CONFIDENCE: readonly ConfidenceLevel[] = ['LOW', 'MEDIUM', 'HIGH'];
const REGIMES = ['BULL', 'BEAR', 'SIDEWAYS', 'VOLATILE'] as const;
const ACTION_COUNTS = [3, 4, 3] as const;
const FLAG_DONE = 1;
const FLAG_STRATEGIC = 2;

// Record offsets.
const O_LOGP = 12;
const O_TS = 24;
const O_REWARD = 32;
const O_BAR = 40;
const O_IND = 80;
const O_REGIME = 168;
const O_UNCERTAINTY = 200;
const O_SIMILAR = 208;
const O_OBS = 240;
const OBS_DIM = TACTICAL_OBS_DIM + RISK_OBS_DIM + EXECUTION_OBS_DIM;

/** A frame that cannot be decoded: the message says what is wrong and what to send instead. */
export class ExperienceFrameError extends Error {
  override readonly name = 'ExperienceFrameError';
}

/** What an experience frame carries per transition: the JSON experience but `global_state`, which decoding rebuilds. */
export type FrameTransition = Omit<Experience, 'global_state'>;

/** Encodes transitions as one frame (see the module comment). Throws on a value the frame cannot hold. */
export function encodeExperienceFrame(transitions: readonly FrameTransition[]): Buffer {
  if (transitions.length === 0) throw new ExperienceFrameError('an experience frame holds at least one transition');
  const strings = new Map<string, number>();
  const index = (s: string): number => {
    let i = strings.get(s);
    if (i === undefined) {
      i = strings.size;
      if (i >= MAX_STRINGS) throw new ExperienceFrameError(`more than ${MAX_STRINGS} distinct symbols and model versions in one frame`);
      strings.set(s, i);
    }
    return i;
  };
  const refs = new Uint16Array(transitions.length * 2);
  transitions.forEach((t, k) => {
    refs[2 * k] = index(t.symbol);
    refs[2 * k + 1] = t.model_version === null ? NULL_STRING : index(t.model_version);
  });
  const encoded = [...strings.keys()].map((s) => Buffer.from(s, 'utf8'));
  let tableBytes = 0;
  for (const e of encoded) {
    if (e.length > 0xffff) throw new ExperienceFrameError('a symbol or model version longer than 65535 bytes');
    tableBytes += 2 + e.length;
  }
  const recordsAt = EXPERIENCE_FRAME_HEADER_BYTES + tableBytes;
  const buf = Buffer.alloc(recordsAt + transitions.length * EXPERIENCE_FRAME_RECORD_BYTES);
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  buf[0] = MAGIC[0];
  buf[1] = MAGIC[1];
  buf[2] = MAGIC[2];
  buf[3] = EXPERIENCE_FRAME_VERSION;
  dv.setUint32(4, transitions.length, true);
  dv.setUint16(8, encoded.length, true);
  buf[10] = TACTICAL_OBS_DIM;
  buf[11] = RISK_OBS_DIM;
  buf[12] = EXECUTION_OBS_DIM;
  buf[13] = INDICATOR_KEYS.length;
  dv.setUint16(14, EXPERIENCE_FRAME_RECORD_BYTES, true);
  let p = EXPERIENCE_FRAME_HEADER_BYTES;
  for (const e of encoded) {
    dv.setUint16(p, e.length, true);
    e.copy(buf, p + 2);
    p += 2 + e.length;
  }
  transitions.forEach((t, k) => {
    const r = recordsAt + k * EXPERIENCE_FRAME_RECORD_BYTES;
    const { tactical, risk, execution } = t.observations;
    if (tactical.length !== TACTICAL_OBS_DIM || risk.length !== RISK_OBS_DIM || execution.length !== EXECUTION_OBS_DIM) {
      throw new ExperienceFrameError(
        `transition ${t.symbol}:${t.ts}: observations must have ${TACTICAL_OBS_DIM}, ${RISK_OBS_DIM} and ${EXECUTION_OBS_DIM} values, got ${tactical.length}, ${risk.length} and ${execution.length}`,
      );
    }
    dv.setUint16(r, refs[2 * k] as number, true);
    dv.setUint16(r + 2, refs[2 * k + 1] as number, true);
    buf[r + 4] = t.actions.tactical;
    buf[r + 5] = t.actions.risk;
    buf[r + 6] = t.actions.execution;
    const s = t.market.strategic;
    buf[r + 7] = (t.done ? FLAG_DONE : 0) | (s !== null ? FLAG_STRATEGIC : 0);
    buf[r + 8] = s === null || s.confidence === null ? 255 : CONFIDENCE.indexOf(s.confidence);
    dv.setFloat32(r + O_LOGP, t.log_probs.tactical, true);
    dv.setFloat32(r + O_LOGP + 4, t.log_probs.risk, true);
    dv.setFloat32(r + O_LOGP + 8, t.log_probs.execution, true);
    dv.setFloat64(r + O_TS, t.ts, true);
    dv.setFloat64(r + O_REWARD, t.reward, true);
    const { bar, indicators } = t.market;
    dv.setFloat64(r + O_BAR, bar.open, true);
    dv.setFloat64(r + O_BAR + 8, bar.high, true);
    dv.setFloat64(r + O_BAR + 16, bar.low, true);
    dv.setFloat64(r + O_BAR + 24, bar.close, true);
    dv.setFloat64(r + O_BAR + 32, bar.volume, true);
    for (let i = 0; i < INDICATOR_KEYS.length; i++) dv.setFloat64(r + O_IND + 8 * i, indicators[INDICATOR_KEYS[i] as keyof Indicators] ?? NaN, true);
    const rp = s?.regime_probabilities ?? null;
    for (let i = 0; i < 4; i++) dv.setFloat64(r + O_REGIME + 8 * i, rp === null ? NaN : rp[REGIMES[i] as (typeof REGIMES)[number]], true);
    dv.setFloat64(r + O_UNCERTAINTY, s?.uncertainty ?? NaN, true);
    const sp = s?.similar_patterns ?? null;
    dv.setFloat64(r + O_SIMILAR, sp === null ? NaN : sp.k, true);
    dv.setFloat64(r + O_SIMILAR + 8, sp?.mean_forward_return ?? NaN, true);
    dv.setFloat64(r + O_SIMILAR + 16, sp?.up_fraction ?? NaN, true);
    dv.setFloat64(r + O_SIMILAR + 24, sp?.mean_distance ?? NaN, true);
    const o = r + O_OBS;
    for (let i = 0; i < TACTICAL_OBS_DIM; i++) dv.setFloat32(o + 4 * i, tactical[i] as number, true);
    for (let i = 0; i < RISK_OBS_DIM; i++) dv.setFloat32(o + 4 * (TACTICAL_OBS_DIM + i), risk[i] as number, true);
    for (let i = 0; i < EXECUTION_OBS_DIM; i++) dv.setFloat32(o + 4 * (TACTICAL_OBS_DIM + RISK_OBS_DIM + i), execution[i] as number, true);
  });
  return buf;
}

/** A decoded transition: the JSON experience with the critic's global state rebuilt from the observations. */
export type DecodedTransition = Experience;

/**
 * Decodes and validates a frame (see the module comment): every transition is checked as the JSON
 * schema checks it (lengths, action ranges, log-probabilities <= 0, finite values, bar ordering,
 * probabilities in [0, 1]). Throws {@link ExperienceFrameError} naming the first problem.
 */
export function decodeExperienceFrame(content: Uint8Array): DecodedTransition[] {
  const fail = (msg: string): never => {
    throw new ExperienceFrameError(msg);
  };
  if (content.length < EXPERIENCE_FRAME_HEADER_BYTES || content[0] !== MAGIC[0] || content[1] !== MAGIC[1] || content[2] !== MAGIC[2]) {
    fail(`not an experience frame (${content.length} bytes, expected the magic "PXF" and a ${EXPERIENCE_FRAME_HEADER_BYTES}-byte header): send ${EXPERIENCE_FRAME_CONTENT_TYPE} bodies built by encodeExperienceFrame`);
  }
  const version = content[3] as number;
  if (version !== EXPERIENCE_FRAME_VERSION) {
    fail(
      `experience frame version ${version} is not supported: this trainer reads version ${EXPERIENCE_FRAME_VERSION}; run tactical workers and trainer of the same release, or send the JSON batch (application/vnd.pipeline.experience-batch+json)`,
    );
  }
  const dv = new DataView(content.buffer, content.byteOffset, content.byteLength);
  const n = dv.getUint32(4, true);
  const nStrings = dv.getUint16(8, true);
  const dims = [content[10], content[11], content[12], content[13]];
  const recordBytes = dv.getUint16(14, true);
  if (dims[0] !== TACTICAL_OBS_DIM || dims[1] !== RISK_OBS_DIM || dims[2] !== EXECUTION_OBS_DIM || dims[3] !== INDICATOR_KEYS.length || recordBytes !== EXPERIENCE_FRAME_RECORD_BYTES) {
    fail(
      `experience frame layout differs from this trainer's: observation sizes ${dims.slice(0, 3).join('/')}, ${dims[3]} indicators, ${recordBytes}-byte records; expected ${TACTICAL_OBS_DIM}/${RISK_OBS_DIM}/${EXECUTION_OBS_DIM}, ${INDICATOR_KEYS.length}, ${EXPERIENCE_FRAME_RECORD_BYTES}: tactical workers and trainer must run the same release`,
    );
  }
  if (n === 0) fail('experience frame holds no transitions');
  const strings: string[] = [];
  let p = EXPERIENCE_FRAME_HEADER_BYTES;
  for (let i = 0; i < nStrings; i++) {
    if (p + 2 > content.length) fail(`experience frame truncated in its string table (string ${i} of ${nStrings})`);
    const len = dv.getUint16(p, true);
    if (p + 2 + len > content.length) fail(`experience frame truncated in its string table (string ${i} of ${nStrings})`);
    strings.push(Buffer.from(content.buffer, content.byteOffset + p + 2, len).toString('utf8'));
    p += 2 + len;
  }
  const expected = p + n * EXPERIENCE_FRAME_RECORD_BYTES;
  if (content.length !== expected) {
    fail(`experience frame of ${n} transitions must be ${expected} bytes, got ${content.length}`);
  }
  const out: DecodedTransition[] = new Array<DecodedTransition>(n);
  for (let k = 0; k < n; k++) {
    const r = p + k * EXPERIENCE_FRAME_RECORD_BYTES;
    const at = (): string => `transition ${k}`;
    const bad = (what: string): never => fail(`${at()}: ${what}`);
    const symbolIndex = dv.getUint16(r, true);
    const symbol = strings[symbolIndex] ?? bad(`symbol index ${symbolIndex} is outside the string table (${nStrings} strings)`);
    if (!SYMBOL_PATTERN.test(symbol)) bad(`symbol ${JSON.stringify(symbol)} must be 1 to 32 of A-Z a-z 0-9 . _ - /`);
    const versionIndex = dv.getUint16(r + 2, true);
    const modelVersion = versionIndex === NULL_STRING ? null : (strings[versionIndex] ?? bad(`model_version index ${versionIndex} is outside the string table (${nStrings} strings)`));
    if (modelVersion === '') bad('model_version must not be empty');
    const actions = { tactical: content[r + 4] as number, risk: content[r + 5] as number, execution: content[r + 6] as number };
    if (actions.tactical >= ACTION_COUNTS[0]) bad(`actions.tactical must be an action index 0..${ACTION_COUNTS[0] - 1}, got ${actions.tactical}`);
    if (actions.risk >= ACTION_COUNTS[1]) bad(`actions.risk must be an action index 0..${ACTION_COUNTS[1] - 1}, got ${actions.risk}`);
    if (actions.execution >= ACTION_COUNTS[2]) bad(`actions.execution must be an action index 0..${ACTION_COUNTS[2] - 1}, got ${actions.execution}`);
    const flags = content[r + 7] as number;
    if ((flags & ~(FLAG_DONE | FLAG_STRATEGIC)) !== 0) bad(`unknown flag bits in ${flags} (known: 1 done, 2 strategic)`);
    if (content[r + 9] !== 0 || content[r + 10] !== 0 || content[r + 11] !== 0) bad('reserved bytes 9..11 of the record must be 0');
    const logProb = (o: number, name: string): number => {
      const v = dv.getFloat32(r + O_LOGP + o, true) + 0;
      if (!(v <= 0) || !Number.isFinite(v)) bad(`log_probs.${name} must be a finite log-probability (<= 0), got ${v}`);
      return v;
    };
    const log_probs = { tactical: logProb(0, 'tactical'), risk: logProb(4, 'risk'), execution: logProb(8, 'execution') };
    const ts = dv.getFloat64(r + O_TS, true) + 0;
    if (!Number.isSafeInteger(ts) || ts < 0) bad(`ts must be a non-negative integer (epoch milliseconds), got ${ts}`);
    const reward = dv.getFloat64(r + O_REWARD, true) + 0;
    if (!Number.isFinite(reward)) bad(`reward must be finite, got ${reward}`);
    const price = (o: number, name: string): number => {
      const v = dv.getFloat64(r + O_BAR + o, true);
      if (!(v > 0) || !Number.isFinite(v)) bad(`market.bar.${name} must be a finite number greater than 0, got ${v}`);
      return v;
    };
    const open = price(0, 'open');
    const high = price(8, 'high');
    const low = price(16, 'low');
    const close = price(24, 'close');
    const volume = dv.getFloat64(r + O_BAR + 32, true) + 0;
    if (!(volume >= 0) || !Number.isFinite(volume)) bad(`market.bar.volume must be a finite number >= 0, got ${volume}`);
    if (!(low <= Math.min(open, close) && Math.max(open, close) <= high)) bad('market.bar must have low <= min(open, close) <= max(open, close) <= high');
    const indicators = {} as Indicators;
    for (let i = 0; i < INDICATOR_KEYS.length; i++) {
      const v = dv.getFloat64(r + O_IND + 8 * i, true);
      if (v === Infinity || v === -Infinity) bad(`market.indicators.${INDICATOR_KEYS[i]} must be finite or null (NaN), got ${v}`);
      indicators[INDICATOR_KEYS[i] as keyof Indicators] = Number.isNaN(v) ? null : v + 0;
    }
    const nullable = (o: number, name: string, min = -Infinity, max = Infinity): number | null => {
      const v = dv.getFloat64(r + o, true);
      if (Number.isNaN(v)) return null;
      if (!(v >= min && v <= max) || !Number.isFinite(v)) bad(`market.strategic.${name} must be ${min === 0 && max === 1 ? 'in [0, 1]' : min === 0 ? 'finite and >= 0' : 'finite'} or null, got ${v}`);
      return v + 0;
    };
    let strategic: DecodedTransition['market']['strategic'] = null;
    if ((flags & FLAG_STRATEGIC) !== 0) {
      const c = content[r + 8] as number;
      if (c !== 255 && c >= CONFIDENCE.length) bad(`market.strategic.confidence code ${c} must be 0 (LOW), 1 (MEDIUM), 2 (HIGH) or 255 (null)`);
      const probs = REGIMES.map((name, i) => nullable(O_REGIME + 8 * i, `regime_probabilities.${name}`, 0, 1));
      const nulls = probs.filter((v) => v === null).length;
      if (nulls !== 0 && nulls !== 4) bad('market.strategic.regime_probabilities must hold all four probabilities or be null (all NaN)');
      const k = nullable(O_SIMILAR, 'similar_patterns.k', 0);
      if (k !== null && !Number.isInteger(k)) bad(`market.strategic.similar_patterns.k must be a non-negative integer, got ${k}`);
      strategic = {
        regime_probabilities: nulls === 4 ? null : { BULL: probs[0] as number, BEAR: probs[1] as number, SIDEWAYS: probs[2] as number, VOLATILE: probs[3] as number },
        uncertainty: nullable(O_UNCERTAINTY, 'uncertainty', 0, 1),
        confidence: c === 255 ? null : (CONFIDENCE[c] as ConfidenceLevel),
        similar_patterns:
          k === null
            ? null
            : {
                k,
                mean_forward_return: nullable(O_SIMILAR + 8, 'similar_patterns.mean_forward_return'),
                up_fraction: nullable(O_SIMILAR + 16, 'similar_patterns.up_fraction', 0, 1),
                mean_distance: nullable(O_SIMILAR + 24, 'similar_patterns.mean_distance', 0),
              },
      };
    } else if (content[r + 8] !== 255) {
      bad('market.strategic is null but a confidence code is set');
    }
    const global = new Array<number>(OBS_DIM);
    for (let i = 0, o = r + O_OBS; i < OBS_DIM; i++, o += 4) {
      const v = dv.getFloat32(o, true);
      if (!Number.isFinite(v)) bad(`observation ${i} must be finite, got ${v}`);
      global[i] = v + 0;
    }
    out[k] = {
      v: 1,
      symbol,
      ts,
      model_version: modelVersion,
      observations: {
        tactical: global.slice(0, TACTICAL_OBS_DIM),
        risk: global.slice(TACTICAL_OBS_DIM, TACTICAL_OBS_DIM + RISK_OBS_DIM),
        execution: global.slice(TACTICAL_OBS_DIM + RISK_OBS_DIM),
      },
      global_state: global,
      actions,
      log_probs,
      reward,
      done: (flags & FLAG_DONE) !== 0,
      market: { bar: { ts, open, high, low, close, volume }, indicators, strategic },
    };
  }
  return out;
}
