import { mlpParameterCount, type MlpWeights } from './network';
import { DENSE_WASM_BASE64 } from './wasm/dense-module';

const WASM_BYTES = Buffer.from(DENSE_WASM_BASE64, 'base64');
let compiled: WebAssembly.Module | undefined;

/** The compiled SIMD dense-layer module (Node ≥ 20 always has WebAssembly SIMD). */
function denseModule(): WebAssembly.Module {
  compiled ??= new WebAssembly.Module(WASM_BYTES);
  return compiled;
}

const roundUp = (n: number, k: number): number => Math.ceil(n / k) * k;

interface Layer {
  w: number;
  b: number;
  x: number;
  out: number;
  nInPadded: number;
  nOut: number;
}

/** Inputs run through one call of the batched kernel at most (larger batches go in chunks). */
export const MAX_FORWARD_BATCH = 32;

type DenseKernel = (w: number, b: number, x: number, out: number, n: number, m: number, relu: number) => void;
type DenseBatchKernel = (
  w: number,
  b: number,
  x: number,
  out: number,
  n: number,
  m: number,
  relu: number,
  nb: number,
  xStrideBytes: number,
  outStrideBytes: number,
) => void;

/**
 * The actors' forward pass with WebAssembly SIMD (f32x4), the one that decides live: weights
 * [in, out] row-major then biases, ReLU hidden layers, linear output. Weights are stored
 * transposed (one row per output) with inputs padded to a multiple of 8. The sums are taken in a
 * fixed order, so results are deterministic.
 *
 * {@link forwardBatch} runs several inputs together (`dense_batch`: two rows by two inputs per pass,
 * so each weight vector read serves two inputs): every output is bit-identical to {@link forward}
 * of that input alone, which keeps the one-row, one-input kernel as the reference.
 */
export class SimdDenseNet {
  private readonly layers: Layer[] = [];
  private readonly dense: DenseKernel;
  private readonly denseBatch: DenseBatchKernel;
  private readonly memory: WebAssembly.Memory;
  private readonly inputView: Float32Array;
  private readonly outputView: Float32Array;
  private readonly nIn: number;
  private readonly nOutLast: number;
  /** Activation buffers: MAX_FORWARD_BATCH rows per layer, row k of layer l at acts[l] + k * strides[l]. */
  private readonly acts: number[];
  private readonly strides: number[];

  constructor(weights: MlpWeights, module: WebAssembly.Module) {
    const { sizes, data } = weights;
    if (data.length !== mlpParameterCount(sizes)) throw new RangeError('weights do not match sizes');
    // Layout: every layer's transposed weights and bias, then the activation buffers.
    let bytes = 0;
    const alloc = (floats: number): number => {
      const at = bytes;
      bytes += roundUp(floats, 8) * 4;
      return at;
    };
    const plan: { w: number; b: number; nIn: number; nInPadded: number; nOut: number; src: number }[] = [];
    let src = 0;
    for (let l = 0; l + 1 < sizes.length; l++) {
      const nIn = sizes[l] as number;
      const nOut = sizes[l + 1] as number;
      const nInPadded = roundUp(nIn, 8);
      plan.push({ w: alloc(nOut * nInPadded), b: alloc(nOut), nIn, nInPadded, nOut, src });
      src += nIn * nOut + nOut;
    }
    const strides = sizes.map((n) => roundUp(n, 8) * 4);
    const acts = sizes.map((n) => alloc(roundUp(n, 8) * MAX_FORWARD_BATCH));
    const pages = Math.ceil(bytes / 65536) + 1;
    const instance = new WebAssembly.Instance(module, {});
    const kernel = instance.exports as { memory: WebAssembly.Memory; dense: DenseKernel; dense_batch: DenseBatchKernel };
    this.memory = kernel.memory;
    if (this.memory.buffer.byteLength < pages * 65536) this.memory.grow(pages - this.memory.buffer.byteLength / 65536);
    this.dense = kernel.dense;
    this.denseBatch = kernel.dense_batch;
    this.acts = acts;
    this.strides = strides;
    const f32 = new Float32Array(this.memory.buffer);
    plan.forEach((p, l) => {
      for (let i = 0; i < p.nIn; i++) {
        for (let o = 0; o < p.nOut; o++) f32[p.w / 4 + o * p.nInPadded + i] = data[p.src + i * p.nOut + o] as number;
      }
      for (let o = 0; o < p.nOut; o++) f32[p.b / 4 + o] = data[p.src + p.nIn * p.nOut + o] as number;
      this.layers.push({ w: p.w, b: p.b, x: acts[l] as number, out: acts[l + 1] as number, nInPadded: p.nInPadded, nOut: p.nOut });
    });
    this.nIn = sizes[0] as number;
    this.inputView = new Float32Array(this.memory.buffer, acts[0], this.nIn);
    const last = sizes[sizes.length - 1] as number;
    this.nOutLast = last;
    this.outputView = new Float32Array(this.memory.buffer, acts[acts.length - 1], last);
  }

  /** Forward pass of one input; returns a view that the next call overwrites. */
  forward(x: ArrayLike<number>): Float32Array {
    if (x.length !== this.nIn) throw new RangeError(`expected ${this.nIn} inputs, got ${x.length}`);
    const input = this.inputView;
    for (let i = 0; i < x.length; i++) input[i] = x[i] as number;
    const last = this.layers.length - 1;
    for (let l = 0; l <= last; l++) {
      const layer = this.layers[l] as Layer;
      this.dense(layer.w, layer.b, layer.x, layer.out, layer.nInPadded, layer.nOut, l < last ? 1 : 0);
    }
    return this.outputView;
  }

  /**
   * Forward pass of several inputs together; output k (a copy) is bit-identical to
   * `forward(xs[k])`. Inputs beyond {@link MAX_FORWARD_BATCH} go through in further chunks.
   */
  forwardBatch(xs: readonly ArrayLike<number>[]): Float32Array[] {
    for (const x of xs) if (x.length !== this.nIn) throw new RangeError(`expected ${this.nIn} inputs, got ${x.length}`);
    const out: Float32Array[] = [];
    const f32 = new Float32Array(this.memory.buffer);
    const inStride = (this.strides[0] as number) / 4;
    const outAt = (this.acts[this.acts.length - 1] as number) / 4;
    const outStride = (this.strides[this.strides.length - 1] as number) / 4;
    const last = this.layers.length - 1;
    for (let from = 0; from < xs.length; from += MAX_FORWARD_BATCH) {
      const nb = Math.min(MAX_FORWARD_BATCH, xs.length - from);
      for (let k = 0; k < nb; k++) {
        const x = xs[from + k] as ArrayLike<number>;
        const at = (this.acts[0] as number) / 4 + k * inStride;
        for (let i = 0; i < x.length; i++) f32[at + i] = x[i] as number;
      }
      for (let l = 0; l <= last; l++) {
        const layer = this.layers[l] as Layer;
        this.denseBatch(
          layer.w,
          layer.b,
          layer.x,
          layer.out,
          layer.nInPadded,
          layer.nOut,
          l < last ? 1 : 0,
          nb,
          this.strides[l] as number,
          this.strides[l + 1] as number,
        );
      }
      for (let k = 0; k < nb; k++) out.push(f32.slice(outAt + k * outStride, outAt + k * outStride + this.nOutLast));
    }
    return out;
  }
}

/** A network that runs forward passes: one input, or several together with the same results. */
export interface InferenceNet {
  forward(x: ArrayLike<number>): Float32Array;
  /** Output k (a copy) equals `forward(xs[k])` bit for bit. */
  forwardBatch(xs: readonly ArrayLike<number>[]): Float32Array[];
}

/** The live forward-pass network of some weights. */
export function inferenceNet(weights: MlpWeights): InferenceNet {
  return new SimdDenseNet(weights, denseModule());
}
