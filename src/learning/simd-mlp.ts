import { mlpParameterCount } from './network';
import { TRAIN_WASM_BASE64 } from './wasm/train-module';

/**
 * Training pass of a ReLU MLP in WebAssembly SIMD (../wasm/train.wat): the batched forward pass,
 * the backward pass (weight, bias and input gradients) and Adam: the one training engine. The same
 * network as {@link Mlp} (weights [in, out] row-major, then biases; ReLU hidden layers, linear
 * output); the unit tests hold its gradients and Adam steps to tfjs's (the test oracle).
 * {@link Mappo.update} loads the weights here, runs its minibatch steps and writes them back.
 *
 * Every width is padded to a multiple of 8 with zero weights; padded units output 0, get zero
 * gradients and so stay 0 under Adam. Sums run in a fixed order: same inputs, same bits.
 */

const WASM_BYTES = Buffer.from(TRAIN_WASM_BASE64, 'base64');
let compiled: WebAssembly.Module | undefined;

/** The compiled training module (Node ≥ 20 always has WebAssembly SIMD). */
export function trainModule(): WebAssembly.Module {
  compiled ??= new WebAssembly.Module(WASM_BYTES);
  return compiled;
}

interface TrainExports {
  memory: WebAssembly.Memory;
  spmm(a: number, m: number, y: number, rows: number, kdim: number, ncols: number, bias: number, relu: number, nz: number, ends: number): void;
  relu_mask(dx: number, h: number, n: number): void;
  transpose(src: number, dst: number, rows: number, cols: number): void;
}

const pad8 = (n: number): number => Math.ceil(n / 8) * 8;

interface LayerPlan {
  nIn: number;
  nOut: number;
  inP: number;
  outP: number;
  /** Byte offsets of W [inP, outP], b [outP], Wᵀ [outP, inP], dW, db. */
  w: number;
  b: number;
  wt: number;
  dw: number;
  db: number;
}

/** Adam's hyper-parameters, as tfjs's `tf.train.adam(lr, beta1, beta2, epsilon)`. */
export interface AdamOptions {
  learningRate: number;
  beta1?: number;
  beta2?: number;
  epsilon?: number;
}

export class SimdMlp {
  private readonly ex: TrainExports;
  private readonly layers: LayerPlan[] = [];
  private readonly paramBytes: number;
  private capacity = 0;
  /** Byte offsets of the batch buffers (valid for `capacity` rows). */
  private acts: number[] = [];
  private ones = 0;
  private nz = 0;
  private ends = 0;
  private bufA = 0;
  private bufB = 0;
  private xt = 0;
  private f32: Float32Array;
  private lastBatch = 0;
  // Adam state (tfjs semantics: accBeta = beta^t, bias-corrected moments).
  private readonly m1: Float32Array;
  private readonly m2: Float32Array;
  private step = 0;
  private readonly adam: Required<AdamOptions>;
  private readonly maxWidthP: number;

  constructor(readonly sizes: readonly number[], adam: AdamOptions, module: WebAssembly.Module) {
    if (sizes.length < 2) throw new RangeError('an MLP needs at least an input and an output size');
    this.adam = { beta1: 0.9, beta2: 0.999, epsilon: 1e-7, ...adam };
    this.ex = new WebAssembly.Instance(module, {}).exports as unknown as TrainExports;
    let bytes = 0;
    const alloc = (floats: number): number => {
      const at = bytes;
      bytes += pad8(floats) * 4;
      return at;
    };
    for (let l = 0; l + 1 < sizes.length; l++) {
      const nIn = sizes[l] as number;
      const nOut = sizes[l + 1] as number;
      const inP = pad8(nIn);
      const outP = pad8(nOut);
      const w = alloc(inP * outP);
      const b = alloc(outP);
      const wt = alloc(outP * inP);
      const dw = alloc(inP * outP);
      const db = alloc(outP);
      this.layers.push({ nIn, nOut, inP, outP, w, b, wt, dw, db });
    }
    this.paramBytes = bytes;
    this.maxWidthP = Math.max(...sizes.map(pad8));
    // Adam moments cover the W and b of every layer, laid out as in memory (W, b per layer).
    const stateLen = this.layers.reduce((s, p) => s + p.inP * p.outP + p.outP, 0);
    this.m1 = new Float32Array(stateLen);
    this.m2 = new Float32Array(stateLen);
    this.f32 = new Float32Array(this.ex.memory.buffer);
    this.ensureCapacity(1);
  }

  /** Grows the batch buffers to hold `rows` samples (the weights stay where they are). */
  private ensureCapacity(rows: number): void {
    if (rows <= this.capacity) return;
    const cap = Math.max(rows, 64);
    let bytes = this.paramBytes;
    const alloc = (floats: number): number => {
      const at = bytes;
      bytes += pad8(floats) * 4;
      return at;
    };
    this.ones = alloc(cap);
    // Non-zero lists: a slot of kdim entries (8 bytes) per row; rows × kdim ≤ cap × widest layer.
    this.nz = alloc(2 * cap * this.maxWidthP);
    this.ends = alloc(Math.max(cap, this.maxWidthP));
    this.acts = this.sizes.map((n) => alloc(cap * pad8(n)));
    this.bufA = alloc(cap * this.maxWidthP);
    this.bufB = alloc(cap * this.maxWidthP);
    this.xt = alloc(cap * this.maxWidthP);
    const memory = this.ex.memory;
    const need = Math.ceil(bytes / 65536);
    const have = memory.buffer.byteLength / 65536;
    if (need > have) memory.grow(need - have);
    this.f32 = new Float32Array(memory.buffer);
    this.f32.fill(1, this.ones / 4, this.ones / 4 + cap);
    this.capacity = cap;
  }

  /** Loads weights in {@link MlpWeights} layout (W0, b0, W1, b1, ...; W [in, out] row-major). */
  setWeights(data: Float32Array): void {
    if (data.length !== mlpParameterCount(this.sizes)) throw new RangeError('weights do not match sizes');
    const f = this.f32;
    let src = 0;
    for (const p of this.layers) {
      const w = p.w / 4;
      f.fill(0, w, w + p.inP * p.outP);
      for (let i = 0; i < p.nIn; i++) f.set(data.subarray(src + i * p.nOut, src + (i + 1) * p.nOut), w + i * p.outP);
      src += p.nIn * p.nOut;
      f.fill(0, p.b / 4, p.b / 4 + p.outP);
      f.set(data.subarray(src, src + p.nOut), p.b / 4);
      src += p.nOut;
      this.ex.transpose(p.w, p.wt, p.inP, p.outP);
    }
  }

  /** The weights in {@link MlpWeights} layout. */
  getWeights(): Float32Array {
    return this.gather('w', 'b');
  }

  /** Forms the weight and bias gradients in the {@link MlpWeights} layout (for tests). */
  getGradients(): Float32Array {
    return this.gather('dw', 'db');
  }

  /** Copies one matrix and bias per layer (weights or their gradients) out in {@link MlpWeights} layout. */
  private gather(matrix: 'w' | 'dw', bias: 'b' | 'db'): Float32Array {
    const out = new Float32Array(mlpParameterCount(this.sizes));
    const f = this.f32;
    let dst = 0;
    for (const p of this.layers) {
      const at = p[matrix] / 4;
      for (let i = 0; i < p.nIn; i++) out.set(f.subarray(at + i * p.outP, at + i * p.outP + p.nOut), dst + i * p.nOut);
      dst += p.nIn * p.nOut;
      out.set(f.subarray(p[bias] / 4, p[bias] / 4 + p.nOut), dst);
      dst += p.nOut;
    }
    return out;
  }

  /**
   * Forward pass of `rows` inputs (`x` is [rows, in] row-major); returns the outputs [rows, out]
   * (a fresh array). The activations are kept for {@link backward}.
   */
  forward(x: Float32Array, rows: number): Float32Array {
    const nIn = this.sizes[0] as number;
    if (x.length !== rows * nIn) throw new RangeError(`expected ${rows} × ${nIn} inputs, got ${x.length}`);
    this.ensureCapacity(rows);
    const f = this.f32;
    const first = this.layers[0] as LayerPlan;
    const h0 = (this.acts[0] as number) / 4;
    if (first.inP === nIn) f.set(x, h0);
    else {
      f.fill(0, h0, h0 + rows * first.inP);
      for (let r = 0; r < rows; r++) f.set(x.subarray(r * nIn, (r + 1) * nIn), h0 + r * first.inP);
    }
    const last = this.layers.length - 1;
    this.layers.forEach((p, l) => {
      this.ex.spmm(this.acts[l] as number, p.w, this.acts[l + 1] as number, rows, p.inP, p.outP, p.b, l < last ? 1 : 0, this.nz, this.ends);
    });
    this.lastBatch = rows;
    const top = this.layers[last] as LayerPlan;
    const out = new Float32Array(rows * top.nOut);
    const hl = (this.acts[last + 1] as number) / 4;
    for (let r = 0; r < rows; r++) out.set(f.subarray(hl + r * top.outP, hl + r * top.outP + top.nOut), r * top.nOut);
    return out;
  }

  /**
   * Backward pass of the last {@link forward}: given dLoss/dOutput [rows, out], forms the
   * gradients of every weight and bias (dW = Xᵀ·dY, db = Σ_rows dY, dX = dY·Wᵀ masked by the ReLU).
   */
  backward(dOut: Float32Array): void {
    const rows = this.lastBatch;
    const last = this.layers.length - 1;
    const top = this.layers[last] as LayerPlan;
    if (dOut.length !== rows * top.nOut) throw new RangeError(`expected ${rows} × ${top.nOut} output gradients, got ${dOut.length}`);
    const f = this.f32;
    let dy = this.bufA;
    let dx = this.bufB;
    f.fill(0, dy / 4, dy / 4 + rows * top.outP);
    for (let r = 0; r < rows; r++) f.set(dOut.subarray(r * top.nOut, (r + 1) * top.nOut), dy / 4 + r * top.outP);
    for (let l = last; l >= 0; l--) {
      const p = this.layers[l] as LayerPlan;
      const x = this.acts[l] as number;
      this.ex.transpose(x, this.xt, rows, p.inP);
      this.ex.spmm(this.xt, dy, p.dw, p.inP, rows, p.outP, -1, 0, this.nz, this.ends);
      this.ex.spmm(this.ones, dy, p.db, 1, rows, p.outP, -1, 0, this.nz, this.ends);
      if (l > 0) {
        this.ex.spmm(dy, p.wt, dx, rows, p.outP, p.inP, -1, 0, this.nz, this.ends);
        this.ex.relu_mask(dx, x, rows * p.inP);
        const t = dy;
        dy = dx;
        dx = t;
      }
    }
  }

  /** Σ g² over every weight and bias gradient (float64, in a fixed order). */
  gradientSquaredNorm(): number {
    const f = this.f32;
    let s = 0;
    for (const p of this.layers) {
      for (const [at, n] of [[p.dw, p.inP * p.outP], [p.db, p.outP]] as const) {
        for (let i = at / 4, end = at / 4 + n; i < end; i++) s += (f[i] as number) * (f[i] as number);
      }
    }
    return s;
  }

  /**
   * One Adam step on the gradients times `scale` (global-norm clipping), as tfjs's Adam:
   * m ← β₁m + (1−β₁)g, v ← β₂v + (1−β₂)g², w ← w − lr·(m/(1−β₁ᵗ)) / (√(v/(1−β₂ᵗ)) + ε).
   */
  adamStep(scale = 1): void {
    const { learningRate: lr, beta1: b1, beta2: b2, epsilon: eps } = this.adam;
    this.step++;
    const c1 = 1 - b1 ** this.step;
    const c2 = 1 - b2 ** this.step;
    const f = this.f32;
    const m1 = this.m1;
    const m2 = this.m2;
    let k = 0;
    for (const p of this.layers) {
      for (const [wAt, gAt, n] of [[p.w, p.dw, p.inP * p.outP], [p.b, p.db, p.outP]] as const) {
        const w0 = wAt / 4;
        const g0 = gAt / 4;
        for (let i = 0; i < n; i++, k++) {
          const g = (f[g0 + i] as number) * scale;
          const a = b1 * (m1[k] as number) + (1 - b1) * g;
          const v = b2 * (m2[k] as number) + (1 - b2) * g * g;
          m1[k] = a;
          m2[k] = v;
          f[w0 + i] = (f[w0 + i] as number) - (lr * (a / c1)) / (Math.sqrt(v / c2) + eps);
        }
      }
      this.ex.transpose(p.w, p.wt, p.inP, p.outP);
    }
  }
}
