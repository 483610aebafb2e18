/**
 * The learning code that `models`, `eval`, `mappo-check` and `build-wasm` run on,
 * gathered so that those commands load it when they run ({@link agentsRuntime}) and every other
 * command starts without it.
 */
export { trainOnSeries } from '../learning/evaluation';
export { TacticalPolicy } from '../learning/policy';
export { WARMUP_BARS } from '../learning/trading-agents';
export { MappoTrainer } from '../learning/trainer';
export { runTwoStepGame, TWO_STEP_OPTIMUM } from '../learning/two-step-game';
export { BASELINES, evaluateMarket, mirrorBars, rulesFor, SYNTHETIC_FAMILIES, syntheticMarket, walkForwardSplit, withStrategicView } from '../learning/walk-forward';
export { compileDenseWat } from '../learning/wasm/compile-dense';
export { openModelRegistry } from '../state/model-files';
