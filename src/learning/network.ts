import { SeededRandom } from '../util/random';

/**
 * A multi-layer perceptron with ReLU hidden layers and a linear output: its weights and their seeded
 * initialisation. Training runs in WebAssembly (simd-mlp.ts); every batch-1 forward pass, live
 * decisions and the trainer's `Mappo.act` and `Mappo.value` alike, runs in simd-dense-net.ts.
 */

/** Serialised weights: layer sizes and, per layer, W ([in, out], row-major) then b ([out]). */
export interface MlpWeights {
  sizes: number[];
  /** Flat concatenation W0, b0, W1, b1, ... */
  data: Float32Array;
}

/** Number of parameters of an MLP with the given layer sizes (input, hidden..., output). */
export function mlpParameterCount(sizes: readonly number[]): number {
  let n = 0;
  for (let i = 0; i + 1 < sizes.length; i++) n += (sizes[i] as number) * (sizes[i + 1] as number) + (sizes[i + 1] as number);
  return n;
}

/**
 * An orthogonal matrix of shape [rows, cols] (orthonormal columns when rows ≥ cols, orthonormal
 * rows otherwise) times `gain`, from Gaussian draws of `rng` and modified Gram–Schmidt. This is the
 * distribution of torch's `nn.init.orthogonal_` (Q of a Gaussian matrix with R's diagonal made
 * positive), drawn from our own seeded generator.
 */
export function orthogonal(rows: number, cols: number, gain: number, rng: SeededRandom): Float32Array {
  const n = Math.max(rows, cols);
  const k = Math.min(rows, cols);
  // k vectors of length n.
  const v: Float64Array[] = [];
  for (let j = 0; j < k; j++) {
    const col = new Float64Array(n);
    for (let i = 0; i < n; i++) col[i] = rng.normal();
    for (const prev of v) {
      let dot = 0;
      for (let i = 0; i < n; i++) dot += (col[i] as number) * (prev[i] as number);
      for (let i = 0; i < n; i++) col[i] = (col[i] as number) - dot * (prev[i] as number);
    }
    let norm = 0;
    for (let i = 0; i < n; i++) norm += (col[i] as number) ** 2;
    norm = Math.sqrt(norm) || 1;
    for (let i = 0; i < n; i++) col[i] = (col[i] as number) / norm;
    v.push(col);
  }
  const out = new Float32Array(rows * cols);
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) {
      // rows ≥ cols: column c is v[c]; otherwise row r is v[r].
      out[r * cols + c] = gain * (rows >= cols ? (v[c] as Float64Array)[r] as number : (v[r] as Float64Array)[c] as number);
    }
  }
  return out;
}

/**
 * Initial weights of an MLP (orthogonal weights, zero biases), fully determined by `rng`: the
 * same draws {@link Mlp.create} makes.
 */
export function initialWeights(sizes: readonly number[], rng: SeededRandom, options: MlpOptions = {}): MlpWeights {
  const data = new Float32Array(mlpParameterCount(sizes));
  let off = 0;
  for (let l = 0; l + 1 < sizes.length; l++) {
    const nIn = sizes[l] as number;
    const nOut = sizes[l + 1] as number;
    const last = l + 2 === sizes.length;
    const gain = last ? (options.outputGain ?? 1) : (options.hiddenGain ?? Math.SQRT2);
    data.set(orthogonal(nIn, nOut, gain, rng), off);
    off += nIn * nOut + nOut; // biases stay 0
  }
  return { sizes: [...sizes], data };
}

/** Options of {@link Mlp.create}. */
export interface MlpOptions {
  /** Gain of the hidden layers' orthogonal init. @defaultValue `Math.SQRT2` (ReLU) */
  hiddenGain?: number;
  /** Gain of the output layer (0.01 for policy heads, 1 for the critic). @defaultValue 1 */
  outputGain?: number;
}

/** The weights of one network of the team. */
export class Mlp {
  private data: Float32Array;
  private rev = 0;

  private constructor(readonly sizes: readonly number[], weights: Float32Array) {
    this.data = weights.slice();
  }

  /** A freshly initialised network (orthogonal weights, zero biases), fully determined by `rng`. */
  static create(sizes: readonly number[], rng: SeededRandom, options: MlpOptions = {}): Mlp {
    return new Mlp(sizes, initialWeights(sizes, rng, options).data);
  }

  /** A network with the given weights (as produced by {@link getWeights}). */
  static fromWeights(weights: MlpWeights): Mlp {
    if (weights.data.length !== mlpParameterCount(weights.sizes)) throw new RangeError('weights do not match sizes');
    return new Mlp(weights.sizes, weights.data);
  }

  get parameterCount(): number {
    return mlpParameterCount(this.sizes);
  }

  /** A copy of the weights. */
  getWeights(): MlpWeights {
    return { sizes: [...this.sizes], data: this.data.slice() };
  }

  /** Overwrites the weights. */
  setWeights(weights: MlpWeights): void {
    if (weights.data.length !== this.parameterCount) throw new RangeError('weights do not match sizes');
    this.data = weights.data.slice();
    this.rev++;
  }

  /** Counts {@link setWeights} calls: a forward net built from these weights is stale once it changes. */
  get revision(): number {
    return this.rev;
  }
}
