import { generateSyntheticMarket } from '../../../src/producers/synthetic-market';
import { strategicInputs } from '../../../src/learning/strategic-series';
import { decodeActions, RISK_SIZES, TACTICAL_ACTIONS, EXECUTION_ACTIONS } from '../../../src/learning/trading-env';

const market = generateSyntheticMarket({ seed: 7, bars: 2400, regimeSequence: ['BULL', 'BEAR'], segmentBars: [576, 864] });
const bars = market.bars.map(({ ts, open, high, low, close, volume }) => ({ ts, open, high, low, close, volume }));

describe('strategic view of a 5m series', () => {
  const full = strategicInputs('SYN', bars);

  it('is null while the analyzer warms up, then present', () => {
    const first = full.findIndex((x) => x !== null);
    expect(first).toBeGreaterThan(200); // ~49 30m bars of warm-up
    expect(full.slice(first).every((x) => x !== null)).toBe(true);
    expect(full[full.length - 1]?.regime_probabilities).not.toBeNull();
  });

  it('uses no bar after the 5m bar it is given to (a truncated series gives the same prefix)', () => {
    for (const cut of [1000, 1003, 1006, 1500]) {
      const prefix = strategicInputs('SYN', bars.slice(0, cut));
      expect(prefix).toEqual(full.slice(0, cut));
    }
  });

  it('changes only on the 5m bar that closes a 30m bar (ts ≡ 25 min mod 30)', () => {
    for (let i = 1; i < full.length; i++) {
      if (full[i] !== full[i - 1]) expect(((bars[i] as { ts: number }).ts % 1_800_000) / 60_000).toBe(25);
    }
  });
});

describe('coherent decisions', () => {
  it('a direction with risk size 0 is FLAT, and FLAT never carries a size', () => {
    for (let t = 0; t < TACTICAL_ACTIONS.length; t++)
      for (let r = 0; r < RISK_SIZES.length; r++)
        for (let e = 0; e < EXECUTION_ACTIONS.length; e++) {
          const d = decodeActions([t, r, e]);
          expect(d.tactical === 'FLAT').toBe(d.risk === 0);
          expect(d.target_position === 0).toBe(d.tactical === 'FLAT');
          if (d.tactical !== 'FLAT') expect(Math.abs(d.target_position)).toBe(d.risk);
        }
    expect(decodeActions([0, 0, 0]).tactical).toBe('FLAT');
    expect(decodeActions([2, 3, 1])).toEqual({ tactical: 'SHORT', risk: 1, execution: 'LIMIT', target_position: -1 });
  });
});
