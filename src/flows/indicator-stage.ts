import type { Bar } from '../../schemas/bar.schema';
import type { Indicators } from '../../schemas/integrated-result.schema';
import { TacticalIndicatorSet, type TacticalIndicatorSetState } from '../indicators';
import type { IndicatorStage } from './tactical-flow';

/**
 * The streaming indicators as a stage of the tactical flow. State is the set's plain JSON, which the
 * worker commits to Redis with each bar; the live set behind the latest state object is kept, so a
 * bar costs one update and one `toJSON()`, and `fromJSON()` runs only after a restart or reset.
 */
export class StreamingIndicatorStage implements IndicatorStage {
  private readonly live = new WeakMap<object, TacticalIndicatorSet>();

  step(state: unknown, bar: Bar): { state: unknown; values: Indicators } {
    let set = state !== null && typeof state === 'object' ? this.live.get(state) : undefined;
    if (set === undefined) {
      set = state === null ? new TacticalIndicatorSet() : TacticalIndicatorSet.fromJSON(state as TacticalIndicatorSetState);
    }
    set.update(bar.high, bar.low, bar.close);
    const next = set.toJSON();
    this.live.set(next, set);
    return { state: next, values: set.snapshot() };
  }
}
