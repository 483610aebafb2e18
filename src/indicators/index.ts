/**
 * Streaming technical indicators and rolling statistics: pure compute, O(1) per update, no
 * allocation per update, and state that round-trips exactly through JSON.
 */
export { Atr, type AtrState } from './atr';
export { BollingerBands, type BollingerBandsState } from './bollinger-bands';
export { EfficiencyRatio, type EfficiencyRatioState } from './efficiency-ratio';
export { Ema, type EmaState } from './ema';
export { type EncodedFloat } from './float-codec';
export { Macd, type MacdState } from './macd';
export { RollingCorrelation, type RollingCorrelationState } from './rolling-correlation';
export { RollingMinMax, type RollingMinMaxState } from './rolling-min-max';
export { RollingSlope, type RollingSlopeState } from './rolling-slope';
export { RollingStats, type RollingStatsState } from './rolling-stats';
export { Rsi, type RsiState } from './rsi';
export { Sma, type SmaState } from './sma';
export {
  TacticalIndicatorSet,
  type IndicatorValues,
  type TacticalIndicatorSetState,
} from './tactical-indicator-set';
export { TrueRange, type TrueRangeState } from './true-range';
