import type { Bar } from '../../schemas/bar.schema';
import { EXCHANGE_BARS, routingKeys } from '../broker/topology';
import { resampleStep, type ResampleState } from '../flows/resample-flow';
import { BarStageConsumer, type StageOutput, type StageState } from './bar-stage-consumer';

/** The resampler's per-symbol state. */
export interface ResamplerState extends StageState {
  open: ResampleState | null;
}

/** Consumes 5m bars and publishes each completed 30m bar to `bars.30m.<symbol>`. */
export class ResamplerConsumer extends BarStageConsumer<ResamplerState, Bar> {
  protected override process(bar: Bar, state: ResamplerState | null): Promise<StageOutput<ResamplerState>> {
    const step = resampleStep(state?.open ?? null, bar);
    return Promise.resolve({
      state: { lastTs: bar.ts, open: step.state },
      emissions: step.emitted.map((b) => ({
        exchange: EXCHANGE_BARS,
        routingKey: routingKeys.bar('30m', b.symbol),
        body: b,
        messageId: `${b.symbol}:30m:${b.ts}`,
        mandatory: true,
      })),
    });
  }
}
