import { mlpParameterCount, type MlpWeights } from './network';

/**
 * ONNX export of a dense ReLU actor network (written here: no converter is installable). The model
 * is `input [N, in] → (Gemm → Relu)* → Gemm → logits [N, actions]`, opset 13, IR version 8, float32
 * weights as raw little-endian initializers. It computes what the live forward pass `SimdDenseNet`
 * does, to float rounding (logits; apply softmax for probabilities). An export only: nothing in the
 * pipeline runs it. Pure: returns the protobuf bytes.
 */

/** Protobuf writer: just the wire types ONNX needs (varint and length-delimited). */
class Pb {
  private readonly parts: Uint8Array[] = [];
  private size = 0;

  private push(bytes: Uint8Array): void {
    this.parts.push(bytes);
    this.size += bytes.length;
  }

  private varint(v: number | bigint): void {
    let x = BigInt(v);
    if (x < 0n) x = BigInt.asUintN(64, x);
    const out: number[] = [];
    do {
      let byte = Number(x & 0x7fn);
      x >>= 7n;
      if (x > 0n) byte |= 0x80;
      out.push(byte);
    } while (x > 0n);
    this.push(Uint8Array.from(out));
  }

  int(field: number, v: number): this {
    this.varint((field << 3) | 0);
    this.varint(v);
    return this;
  }

  bytes(field: number, b: Uint8Array): this {
    this.varint((field << 3) | 2);
    this.varint(b.length);
    this.push(b);
    return this;
  }

  string(field: number, s: string): this {
    return this.bytes(field, new TextEncoder().encode(s));
  }

  message(field: number, m: Pb): this {
    return this.bytes(field, m.finish());
  }

  finish(): Uint8Array {
    const out = new Uint8Array(this.size);
    let at = 0;
    for (const p of this.parts) {
      out.set(p, at);
      at += p.length;
    }
    return out;
  }
}

const FLOAT = 1; // TensorProto.DataType.FLOAT

function tensor(name: string, dims: number[], values: Float32Array): Pb {
  const t = new Pb();
  for (const d of dims) t.int(1, d);
  t.int(2, FLOAT).string(8, name);
  const le = new Uint8Array(values.length * 4);
  const view = new DataView(le.buffer);
  values.forEach((v, i) => view.setFloat32(i * 4, v, true));
  return t.bytes(9, le);
}

function valueInfo(name: string, dims: (number | string)[]): Pb {
  const shape = new Pb();
  for (const d of dims) shape.message(1, typeof d === 'number' ? new Pb().int(1, d) : new Pb().string(2, d));
  const tensorType = new Pb().int(1, FLOAT).message(2, shape);
  return new Pb().string(1, name).message(2, new Pb().message(1, tensorType));
}

function node(op: string, inputs: string[], output: string, name: string): Pb {
  const n = new Pb();
  for (const i of inputs) n.string(1, i);
  return n.string(2, output).string(3, name).string(4, op);
}

/** Input and output names of exported actors. */
export const ONNX_INPUT = 'observation';
export const ONNX_OUTPUT = 'logits';

/** The ONNX model (protobuf bytes) of one dense actor network; batch dimension `N` is dynamic. */
export function exportMlpToOnnx(weights: MlpWeights, graphName = 'actor'): Uint8Array {
  const { sizes, data } = weights;
  if (sizes.length < 2 || data.length !== mlpParameterCount(sizes)) throw new RangeError('weights do not match sizes');
  const graph = new Pb();
  const inits: Pb[] = [];
  let off = 0;
  let x = ONNX_INPUT;
  for (let l = 0; l + 1 < sizes.length; l++) {
    const nIn = sizes[l] as number;
    const nOut = sizes[l + 1] as number;
    const last = l + 2 === sizes.length;
    inits.push(tensor(`W${l}`, [nIn, nOut], data.subarray(off, off + nIn * nOut)));
    off += nIn * nOut;
    inits.push(tensor(`b${l}`, [nOut], data.subarray(off, off + nOut)));
    off += nOut;
    const gemmOut = last ? ONNX_OUTPUT : `h${l}`;
    graph.message(1, node('Gemm', [x, `W${l}`, `b${l}`], gemmOut, `dense${l}`));
    if (!last) {
      graph.message(1, node('Relu', [gemmOut], `a${l}`, `relu${l}`));
      x = `a${l}`;
    }
  }
  graph.string(2, graphName);
  for (const t of inits) graph.message(5, t);
  graph.message(11, valueInfo(ONNX_INPUT, ['N', sizes[0] as number]));
  graph.message(12, valueInfo(ONNX_OUTPUT, ['N', sizes[sizes.length - 1] as number]));
  const model = new Pb()
    .int(1, 8) // ir_version
    .string(2, 'bar-pipeline')
    .message(7, graph)
    .message(8, new Pb().string(1, '').int(2, 13));
  return model.finish();
}
