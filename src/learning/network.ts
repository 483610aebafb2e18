import * as tf from '@tensorflow/tfjs';
import { SeededRandom } from '../util/random';
import { denseCustomGrad } from './backend';

/**
 * A multi-layer perceptron with ReLU hidden layers and a linear output, held as tfjs variables
 * (for training) and mirrored into plain Float32Arrays (for batch-1 inference without tfjs
 * dispatch overhead, see {@link Mlp.forwardJs}).
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
 * positive), drawn from our own seeded generator so that initial weights do not depend on tfjs.
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

/** Options of {@link Mlp.create}. */
export interface MlpOptions {
  /** Gain of the hidden layers' orthogonal init. @defaultValue `Math.SQRT2` (ReLU) */
  hiddenGain?: number;
  /** Gain of the output layer (0.01 for policy heads, 1 for the critic). @defaultValue 1 */
  outputGain?: number;
}

export class Mlp {
  /** W0, b0, W1, b1, ... as tfjs variables. */
  readonly variables: tf.Variable[];
  /** Per layer: Wᵀ ([out, in], row-major) for contiguous dot products, and b. */
  private js: { wt: Float32Array; b: Float32Array; nIn: number; nOut: number }[] = [];
  private scratch: Float32Array[] = [];

  private constructor(readonly sizes: readonly number[], weights: Float32Array) {
    this.variables = [];
    let off = 0;
    for (let l = 0; l + 1 < sizes.length; l++) {
      const nIn = sizes[l] as number;
      const nOut = sizes[l + 1] as number;
      this.variables.push(tf.variable(tf.tensor2d(weights.subarray(off, off + nIn * nOut), [nIn, nOut]), true));
      off += nIn * nOut;
      this.variables.push(tf.variable(tf.tensor1d(weights.subarray(off, off + nOut)), true));
      off += nOut;
    }
    this.setJs(weights);
  }

  /** A freshly initialised network (orthogonal weights, zero biases), fully determined by `rng`. */
  static create(sizes: readonly number[], rng: SeededRandom, options: MlpOptions = {}): Mlp {
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
    return new Mlp(sizes, data);
  }

  /** A network with the given weights (as produced by {@link getWeights}). */
  static fromWeights(weights: MlpWeights): Mlp {
    if (weights.data.length !== mlpParameterCount(weights.sizes)) throw new RangeError('weights do not match sizes');
    return new Mlp(weights.sizes, weights.data);
  }

  get parameterCount(): number {
    return mlpParameterCount(this.sizes);
  }

  /** Reads the tfjs variables into a flat copy. */
  getWeights(): MlpWeights {
    const data = new Float32Array(this.parameterCount);
    let off = 0;
    for (const v of this.variables) {
      const d = v.dataSync() as Float32Array;
      data.set(d, off);
      off += d.length;
    }
    return { sizes: [...this.sizes], data };
  }

  /** Overwrites the tfjs variables and the JS mirror. */
  setWeights(weights: MlpWeights): void {
    if (weights.data.length !== this.parameterCount) throw new RangeError('weights do not match sizes');
    let off = 0;
    for (const v of this.variables) {
      const n = v.size;
      v.assign(tf.tensor(weights.data.subarray(off, off + n), v.shape));
      off += n;
    }
    this.setJs(weights.data);
  }

  /** Copies the tfjs variables into the JS mirror; call after every optimiser step that should show in {@link forwardJs}. */
  syncJs(): void {
    this.setJs(this.getWeights().data);
  }

  private setJs(data: Float32Array): void {
    this.js = [];
    this.scratch = [];
    let off = 0;
    for (let l = 0; l + 1 < this.sizes.length; l++) {
      const nIn = this.sizes[l] as number;
      const nOut = this.sizes[l + 1] as number;
      const wt = new Float32Array(nIn * nOut);
      for (let i = 0; i < nIn; i++) for (let o = 0; o < nOut; o++) wt[o * nIn + i] = data[off + i * nOut + o] as number;
      off += nIn * nOut;
      const b = data.slice(off, off + nOut);
      off += nOut;
      this.js.push({ wt, b, nIn, nOut });
      this.scratch.push(new Float32Array(nOut));
    }
  }

  /** tfjs forward pass on a batch [n, in] → [n, out], using the custom-gradient dense layer. */
  forward(x: tf.Tensor2D): tf.Tensor2D {
    let h = x;
    const layers = this.variables.length / 2;
    for (let l = 0; l < layers; l++) {
      h = denseCustomGrad(h, this.variables[2 * l] as tf.Variable<tf.Rank.R2>, this.variables[2 * l + 1] as tf.Variable<tf.Rank.R1>);
      if (l + 1 < layers) h = tf.relu(h);
    }
    return h;
  }

  /**
   * Plain-JS forward pass of one input (batch 1). Returns a view into a scratch buffer that the
   * next call overwrites: copy it if it must outlive the call.
   */
  forwardJs(x: ArrayLike<number>): Float32Array {
    let input: ArrayLike<number> = x;
    const last = this.js.length - 1;
    for (let l = 0; l <= last; l++) {
      const { wt, b, nIn, nOut } = this.js[l] as { wt: Float32Array; b: Float32Array; nIn: number; nOut: number };
      const out = this.scratch[l] as Float32Array;
      for (let o = 0; o < nOut; o++) {
        let s0 = 0;
        let s1 = 0;
        let s2 = 0;
        let s3 = 0;
        const row = o * nIn;
        let i = 0;
        for (; i + 3 < nIn; i += 4) {
          s0 += (wt[row + i] as number) * (input[i] as number);
          s1 += (wt[row + i + 1] as number) * (input[i + 1] as number);
          s2 += (wt[row + i + 2] as number) * (input[i + 2] as number);
          s3 += (wt[row + i + 3] as number) * (input[i + 3] as number);
        }
        for (; i < nIn; i++) s0 += (wt[row + i] as number) * (input[i] as number);
        const s = s0 + s1 + s2 + s3 + (b[o] as number);
        out[o] = l < last && s < 0 ? 0 : s;
      }
      input = out;
    }
    return input as Float32Array;
  }

  dispose(): void {
    for (const v of this.variables) v.dispose();
  }
}
