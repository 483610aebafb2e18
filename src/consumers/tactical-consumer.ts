import type { ConsumeMessage } from 'amqplib';
import { BAR_BATCH_CONTENT_TYPE, BarBatchSchema } from '../../schemas/bar-batch.schema';
import { HEADER_RESULTS_TO, RESULT_BATCH_CONTENT_TYPE, RESULTS_TO_PATTERN } from '../../schemas/result-batch.schema';
import { Bar5mSchema, type Bar, type Bar30m } from '../../schemas/bar.schema';
import type { HandleResult } from '../broker/base-consumer';
import { EXCHANGE_INTERNAL, EXCHANGE_RESULTS, HEADER_SYMBOL, messageIds, routingKeys } from '../broker/topology';
import { ValidationError } from '../errors';
import type { BrokerConnection } from '../broker/broker-connection';
import type { Publisher } from '../broker/publisher';
import type { ContextBufferFlow, ContextLookup } from '../flows/context-buffer-flow';
import { NO_FAULTS, type FaultInjector } from '../flows/fault-injection';
import { ResampleFlow, type Resampled, type ResampleState } from '../flows/resample-flow';
import { ResultGather } from '../flows/result-gather';
import type { TacticalFlow, TacticalState, TacticalStep } from '../flows/tactical-flow';
import type { ExperienceTransition } from '../flows/agent-stage';
import { PipelineEvent, pipelineEvents } from '../observability/events';
import type { SymbolStateStore } from '../state/symbol-state-store';
import type { Confirmation, Emission, StageOutput } from './bar-commits';
import { BarStageConsumer, type BarStageConsumerOptions } from './bar-stage-consumer';
import type { ExperienceBatcher } from './experience-batcher';
import { parseMessage } from './parse-message';

/** Options of {@link TacticalConsumer}. */
export interface TacticalConsumerOptions extends BarStageConsumerOptions {
  /** The queue strategic contexts for this worker's 30m bars must be sent to (its reply-to). */
  contextQueue: string;
  /** Collects the transitions for the trainer (online training); absent: none are published. */
  experience?: ExperienceBatcher;
  /** Resilience testing (`crash:<symbol>:5m:<ts>` kills the worker on that bar). @defaultValue none */
  faults?: FaultInjector;
  /**
   * Upgrades: the 30m bar a separate resampler (before the tactical worker built them) had open for
   * a symbol whose tactical state predates it. @defaultValue none
   */
  legacyResample?: (symbol: string) => Promise<ResampleState | null>;
  /**
   * 30m periods a symbol's 30m bars may be published ahead of the bar that completes them, when
   * the bars are already in hand (delivered, not yet processed: a replay batch, a backlog): at most
   * the strategic feedback lag − 1, so that the strategic worker finds every feedback window it
   * needs already sent and computes the contexts before the bars that need them come up. 0: a 30m
   * bar leaves when the bar completing it is processed. @defaultValue 0
   */
  lookaheadPeriods?: number;
}

/**
 * Consumes 5m bars and publishes one integrated result per accepted bar to `results.<symbol>`.
 * It also builds the symbol's 30m bars: a completed one is published at once on `pipeline.internal`
 * (`bars.30m.<symbol>`, forwarded to `market.bars`; header `x-symbol` for the strategic ring,
 * reply-to this worker's context queue), and the bar that completed it then waits (bounded) for its
 * strategic context. Every six bars the feedback window goes to the strategic side through the same
 * ring as the 30m bars.
 */
export class TacticalConsumer extends BarStageConsumer<TacticalState, Bar> {
  private readonly faults: FaultInjector;
  private readonly resample: ResampleFlow;
  /** The result gathers of the batch deliveries that asked for batched results. */
  private readonly gathers = new WeakMap<ConsumeMessage, ResultGather>();

  constructor(
    connection: BrokerConnection,
    publisher: Publisher,
    store: SymbolStateStore<TacticalState>,
    private readonly flow: TacticalFlow,
    private readonly contexts: ContextBufferFlow,
    private readonly tacticalOptions: TacticalConsumerOptions,
  ) {
    super(connection, publisher, store, Bar5mSchema, tacticalOptions);
    this.faults = tacticalOptions.faults ?? NO_FAULTS;
    this.resample = new ResampleFlow({
      lookaheadPeriods: tacticalOptions.lookaheadPeriods ?? 0,
      ...(tacticalOptions.legacyResample === undefined ? {} : { legacyResample: tacticalOptions.legacyResample }),
    });
  }

  protected override onDelivered(bar: Bar, msg: ConsumeMessage): void {
    this.resample.delivered(bar, msg.fields.redelivered);
  }

  protected override onReset(): void {
    this.resample.reset();
  }

  private emission30m(b: Bar30m): Emission {
    return {
      exchange: EXCHANGE_INTERNAL,
      routingKey: routingKeys.bar('30m', b.symbol),
      body: b,
      messageId: messageIds.bar(b.symbol, '30m', b.ts),
      mandatory: true,
      headers: { [HEADER_SYMBOL]: b.symbol },
      replyTo: this.tacticalOptions.contextQueue,
    };
  }

  /** A batch of bars (content type {@link BAR_BATCH_CONTENT_TYPE}) is taken as one delivery. */
  protected override handle(msg: ConsumeMessage): Promise<HandleResult> {
    if (msg.properties.contentType !== BAR_BATCH_CONTENT_TYPE) return super.handle(msg);
    const batch = parseMessage(msg.content, BarBatchSchema);
    const expectedKey = routingKeys.bar('5m', batch.symbol);
    if (msg.fields.routingKey !== expectedKey) {
      throw new ValidationError(
        `routing key ${msg.fields.routingKey} does not match the batch (symbol ${batch.symbol}): publish it as ${expectedKey}`,
      );
    }
    const resultsTo: unknown = msg.properties.headers?.[HEADER_RESULTS_TO];
    if (resultsTo === undefined) return this.handleBatch(msg, batch.bars);
    if (typeof resultsTo !== 'string' || !RESULTS_TO_PATTERN.test(resultsTo)) {
      throw new ValidationError(
        `header ${HEADER_RESULTS_TO} must be a routing key like replay.results.<name> (letters, digits, _ and -), got ${JSON.stringify(resultsTo)}`,
      );
    }
    const id = messageIds.resultBatch(batch.symbol, batch.bars[0]?.ts ?? 0, batch.bars[batch.bars.length - 1]?.ts ?? 0);
    const gather = new ResultGather();
    this.gathers.set(msg, gather);
    return this.handleBatch(msg, batch.bars, (superseded) =>
      gather.send((body) =>
        this.sendUntilConfirmed(
          id,
          () => this.publisher.publish(EXCHANGE_INTERNAL, resultsTo, body, { messageId: id, mandatory: true, contentType: RESULT_BATCH_CONTENT_TYPE }),
          superseded,
        ),
      ),
    );
  }

  protected override async process(
    bar: Bar,
    state: TacticalState | null,
    msg: ConsumeMessage,
    receivedAt: number,
    superseded: AbortSignal,
  ): Promise<StageOutput<TacticalState>> {
    const id = `${bar.symbol}:5m:${bar.ts}`;
    // The 30m bar this bar completes leaves first: the strategic side computes the context this bar waits for.
    const resampled = await this.resample.step(bar, state);
    const confirmations = this.send30m(bar, resampled, superseded);
    const required = this.flow.requiredContext(bar, state);
    // Abandoned (not run out) when the channel is lost: the redelivered bar re-sends its 30m bar and waits again.
    const lookup = await this.contexts.lookup(bar.symbol, required, superseded);
    if (lookup.stale) this.log.warn({ symbol: bar.symbol, ts: bar.ts, required }, 'context wait ran out: deciding with the previous context (stale)');
    const step = await this.guardCompute(msg, id, () => {
      this.faults.crashIfListed(`crash:${id}`);
      return this.flow.step(bar, state, required, lookup);
    });
    const emissions: Emission[] = [];
    const gather = this.record(bar, resampled, step, lookup, msg, receivedAt, emissions);
    if (gather !== undefined) confirmations.push({ what: id, confirmed: gather.confirmed });
    if (step.transition !== null) this.addExperience([step.transition], confirmations);
    return { state: step.state, emissions, confirmations };
  }

  /**
   * A replay batch's loop, and a single live bar's fast path (see the base class): decides its bars one after another with no await
   * while each one's context is in memory (sent ahead and answered, or none needed), as
   * {@link process} would; stops at the first bar that must wait, which then goes the per-bar way.
   * One result-batch confirmation and one experience add for the run.
   */
  protected override processRun(
    bars: readonly Bar[],
    first: TacticalState | null,
    msg: ConsumeMessage,
    receivedAt: number,
    superseded: AbortSignal,
  ): { decided: number; output: StageOutput<TacticalState> } | undefined {
    let state = first;
    const emissions: Emission[] = [];
    const confirmations: Confirmation[] = [];
    const transitions: ExperienceTransition[] = [];
    let gather: ResultGather | undefined;
    let decided = 0;
    for (const bar of bars) {
      const required = this.flow.requiredContext(bar, state);
      const lookup = this.contexts.lookupNow(bar.symbol, required, superseded);
      const open = this.resample.openNow(state);
      if (lookup === undefined || open === undefined) break;
      const resampled = this.resample.stepFrom(bar, open);
      this.faults.crashIfListed(`crash:${messageIds.bar(bar.symbol, '5m', bar.ts)}`);
      let step: TacticalStep;
      try {
        step = this.flow.stepNow(bar, state, required, lookup);
      } catch {
        break; // the per-bar way fails it again, and retries or dead-letters it (nothing was sent yet)
      }
      // Its context is in memory, so the 30m bar it completes (if any) was sent ahead already:
      // sending (or confirming) it after the computation changes nothing the bar waits for.
      confirmations.push(...this.send30m(bar, resampled, superseded));
      gather = this.record(bar, resampled, step, lookup, msg, receivedAt, emissions);
      if (step.transition !== null) transitions.push(step.transition);
      state = step.state;
      decided++;
    }
    if (state === null || decided === 0) return undefined;
    if (gather !== undefined) confirmations.push({ what: `results up to ${(bars[0] as Bar).symbol}:5m:${state.lastTs}`, confirmed: gather.confirmed });
    if (transitions.length > 0) this.addExperience(transitions, confirmations);
    return { decided, output: { state, emissions, confirmations } };
  }

  /** Sends the 30m bars a bar completed (unless sent ahead) and those the bars in hand complete next. */
  private send30m(bar: Bar, resampled: Resampled, superseded: AbortSignal): Confirmation[] {
    const confirmations = resampled.completed.map(({ bar: b, sentAhead, differsFromSentAhead }): Confirmation => {
      const e = this.emission30m(b);
      if (sentAhead !== undefined) {
        // A look-ahead publish that failed is sent again now, while this bar waits for the context.
        const confirmed = sentAhead.catch(() => this.publishUntilConfirmed(e, superseded));
        confirmed.catch(() => undefined); // awaited by the commit
        return { what: e.messageId, confirmed };
      }
      if (differsFromSentAhead === true) {
        this.log.error({ symbol: b.symbol, ts: b.ts }, 'a 30m bar published ahead differs from the one the bars built (a bar in between was not accepted); the strategic worker keeps the first');
      }
      // Sent again until confirmed while this bar waits for the context the strategic worker
      // computes from it: left to the commit's retry (after the bar is computed), a failed publish
      // would go again only once the whole context wait had run out, and the bar would be decided
      // with a stale context.
      const confirmed = this.publishUntilConfirmed(e, superseded);
      confirmed.catch(() => undefined); // awaited by the commit
      return { what: e.messageId, confirmed };
    });
    // The 30m bars the bars in hand complete next leave now (look-ahead), each once.
    for (const b of this.resample.ahead(bar, resampled.state)) {
      const confirm = this.publishEmission(this.emission30m(b));
      confirm.catch(() => undefined); // the lane's commit awaits (and retries) it
      this.resample.recordSentAhead(b, confirm);
    }
    return confirmations;
  }

  /**
   * Completes a computed bar's state and puts its result and feedback windows in `emissions`, or
   * its result in the delivery's result gather, which it returns then (the bar's commit must wait
   * for the gather's confirm).
   */
  private record(bar: Bar, resampled: Resampled, step: TacticalStep, lookup: ContextLookup, msg: ConsumeMessage, receivedAt: number, emissions: Emission[]): ResultGather | undefined {
    const { result, state: next, feedback } = step;
    next.resample = resampled.state;
    result.latency_ms = Math.round((performance.now() - receivedAt) * 1000) / 1000;
    pipelineEvents.emit(PipelineEvent.ResultPublished, {
      stage: 'tactical',
      latencyMs: result.latency_ms,
      stale: lookup.stale,
      regime: result.strategic.regime, confidence: result.strategic.confidence, tactical: result.actions.tactical, execution: result.actions.execution,
    });
    const gather = this.gathers.get(msg);
    if (gather === undefined) {
      emissions.push({
        exchange: EXCHANGE_RESULTS,
        routingKey: routingKeys.result(bar.symbol),
        body: result,
        messageId: messageIds.bar(bar.symbol, '5m', bar.ts),
        mandatory: true,
      });
    } else {
      // Leaves with the batch's other results, in one message to the replay that asked for them:
      // the gather sends (and re-sends) it, a bar only waits for its confirm.
      gather.add(result);
    }
    for (const f of feedback) {
      emissions.push({
        exchange: EXCHANGE_INTERNAL,
        routingKey: routingKeys.feedback(f.symbol),
        body: f,
        messageId: messageIds.feedback(f.symbol, f.window_close_ts),
        mandatory: true,
        headers: { [HEADER_SYMBOL]: f.symbol },
      });
    }
    return gather;
  }

  /** Adds transitions for the trainer in one go; the commit awaits (and retries) their batch. */
  private addExperience(transitions: ExperienceTransition[], confirmations: Confirmation[]): void {
    const batcher = this.tacticalOptions.experience;
    if (batcher === undefined) return;
    const last = transitions[transitions.length - 1] as ExperienceTransition;
    const confirmed = batcher.add(...transitions);
    confirmed.catch(() => undefined); // awaited (and retried) by the commit
    confirmations.push({ what: messageIds.experience(last.symbol, last.ts), confirmed, again: () => batcher.add(...transitions) });
  }
}
