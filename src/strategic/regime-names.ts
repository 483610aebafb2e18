import type { RegimeName } from '../../schemas/strategic-context.schema';

/** The four regimes in the fixed order used by every array and matrix in this folder. */
export const REGIME_NAMES: readonly RegimeName[] = ['BULL', 'BEAR', 'SIDEWAYS', 'VOLATILE'];

/** Index of each regime in {@link REGIME_NAMES}. */
export const REGIME_INDEX: Readonly<Record<RegimeName, number>> = { BULL: 0, BEAR: 1, SIDEWAYS: 2, VOLATILE: 3 };
