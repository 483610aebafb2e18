/** Argument checks shared by the indicator constructors and `fromJSON` restorers. */

/**
 * Checks that `value` is an integer of at least `min`.
 * @throws RangeError otherwise, naming the class and the argument.
 */
export function assertPeriod(owner: string, name: string, value: number, min = 1): void {
  if (!Number.isInteger(value) || value < min) {
    throw new RangeError(`${owner}: ${name} must be an integer >= ${min}, got ${String(value)}`);
  }
}

/**
 * Checks that a restored counter or index is an integer in `[min, max]` and returns it.
 * @throws RangeError otherwise.
 */
export function stateInt(v: unknown, name: string, min: number, max: number): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
    throw new RangeError(`indicator state field ${name} must be an integer in [${min}, ${max}], got ${String(v)}`);
  }
  return v;
}

/**
 * Checks that a restored object is non-null and returns it typed as a record.
 * @throws TypeError otherwise.
 */
export function stateObject(v: unknown, name: string): Record<string, unknown> {
  if (typeof v !== 'object' || v === null) throw new TypeError(`${name} state must be an object`);
  return v as Record<string, unknown>;
}
