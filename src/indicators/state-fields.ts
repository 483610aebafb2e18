/**
 * Field tables: each indicator lists the fields of its saved state once, in the order they are
 * written, and {@link encodeFields}/{@link decodeFields} write and restore them, so that toJSON
 * and fromJSON cannot disagree about a key, a bound or an encoding.
 */
import { decodeFloat, decodeFloats, encodeFloat, encodeFloats } from './float-codec';
import { stateInt } from './validation';

/** One field of a saved state and where it lives on the instance. */
export interface StateField {
  /** Key in the saved state (and the name in error messages). */
  readonly key: string;
  /** The instance property that holds it (on `instance[owner]` when `owner` is set). */
  readonly prop: string;
  /**
   * `int`: a counter or index, restored only if an integer in [0, max(period)]; `float`: a double
   * (element `slot` of the `Float64Array` property when `slot` is set); `floats`: a
   * `Float64Array` of `period` doubles, restored in place.
   */
  readonly kind: 'int' | 'float' | 'floats';
  readonly max?: (period: number) => number;
  readonly slot?: number;
  readonly owner?: string;
}

type Bound = (period: number) => number;

/** A counter or index in [0, max(period)]. */
export const int = (key: string, max: Bound, prop = key, owner?: string): StateField => ({
  key,
  prop,
  kind: 'int',
  max,
  owner,
});
/** A double. */
export const float = (key: string, prop = key): StateField => ({ key, prop, kind: 'float' });
/** A `Float64Array` of `period` doubles. */
export const floats = (key: string, prop = key, owner?: string): StateField => ({
  key,
  prop,
  kind: 'floats',
  owner,
});
/** Doubles held in the `Float64Array` property `prop`, the k-th key in element k. */
export const slots = (prop: string, keys: readonly string[]): StateField[] =>
  keys.map((key, slot) => ({ key, prop, kind: 'float', slot }));

/** The period bounds most fields use. */
export const LAST_SLOT: Bound = (p) => p - 1;
export const PERIOD: Bound = (p) => p;
export const PERIOD_PLUS_ONE: Bound = (p) => p + 1;

type Holder = Record<string, unknown>;

function holder(instance: object, f: StateField): Holder {
  const h = instance as Holder;
  return f.owner === undefined ? h : (h[f.owner] as Holder);
}

/**
 * The fields of `instance` as plain JSON-safe data, keyed and ordered as in `fields`, added to
 * `out` (a new object by default).
 */
export function encodeFields(
  instance: object,
  fields: readonly StateField[],
  out: Record<string, unknown> = {},
): Record<string, unknown> {
  const own = instance as Holder;
  for (let i = 0; i < fields.length; i++) {
    const f = fields[i] as StateField;
    const v = (f.owner === undefined ? own : (own[f.owner] as Holder))[f.prop];
    if (f.kind === 'int') out[f.key] = v;
    else if (f.kind === 'floats') out[f.key] = encodeFloats(v as Float64Array);
    else out[f.key] = encodeFloat(f.slot === undefined ? (v as number) : ((v as Float64Array)[f.slot] as number));
  }
  return out;
}

/**
 * Restores `fields` from `state` onto `instance` (whose arrays already have `period` elements),
 * checking each in order; `prefix` goes before each key in error messages.
 * @throws RangeError or TypeError on the first malformed field.
 */
export function decodeFields(
  instance: object,
  state: unknown,
  fields: readonly StateField[],
  period: number,
  prefix = '',
): void {
  const s = state as Holder;
  for (const f of fields) {
    const h = holder(instance, f);
    const name = prefix + f.key;
    const v = s[f.key];
    if (f.kind === 'int') h[f.prop] = stateInt(v, name, 0, (f.max as Bound)(period));
    else if (f.kind === 'floats') (h[f.prop] as Float64Array).set(decodeFloats(v, period, name));
    else if (f.slot === undefined) h[f.prop] = decodeFloat(v, name);
    else (h[f.prop] as Float64Array)[f.slot] = decodeFloat(v, name);
  }
}

/** The saved state of an indicator with a period: `period` first, then `fields`. */
export function saveState<S>(
  instance: { readonly period: number },
  fields: readonly StateField[],
): S {
  // Written into the object that holds `period`, not spread into a second one: this runs every bar.
  return encodeFields(instance, fields, { period: instance.period }) as unknown as S;
}

/**
 * Restores `fields` from `state` onto `instance` (built with the state's period) and returns it.
 * @throws RangeError or TypeError on the first malformed field.
 */
export function restoreState<T extends { readonly period: number }>(
  instance: T,
  state: unknown,
  fields: readonly StateField[],
): T {
  decodeFields(instance, state, fields, instance.period);
  return instance;
}
