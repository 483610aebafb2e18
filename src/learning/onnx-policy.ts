import type * as Ort from 'onnxruntime-node';
import { exportMlpToOnnx, ONNX_INPUT, ONNX_OUTPUT } from './onnx-export';
import { TacticalPolicy, type DecideOptions, type Decision, type DecisionInput } from './policy';

/**
 * The tactical policy served by ONNX Runtime (`PIPELINE_INFERENCE=onnx`): the same observations,
 * decoding and seeded exploration as {@link TacticalPolicy}, with the three actors' logits computed
 * by onnxruntime-node (CPU, one thread each) from the ONNX export of the same weights. Outputs
 * match the WebAssembly path to ~1e-8 (see the ONNX test); a greedy argmax can differ only on
 * exact ties. Use {@link decideAsync}: the synchronous {@link decide} stays on WebAssembly.
 */
export class OnnxTacticalPolicy extends TacticalPolicy {
  private constructor(
    base: TacticalPolicy,
    private readonly ort: typeof Ort,
    private readonly sessions: Ort.InferenceSession[],
  ) {
    super(base.version, base.actorWeights(), base.costs);
  }

  /** Builds the ONNX sessions of a policy's actors (exported in memory from its weights). */
  static async from(policy: TacticalPolicy): Promise<OnnxTacticalPolicy> {
    const ort = await import('onnxruntime-node');
    const sessions = await Promise.all(
      policy.actorWeights().map((w) => ort.InferenceSession.create(exportMlpToOnnx(w), { intraOpNumThreads: 1, interOpNumThreads: 1, executionMode: 'sequential' })),
    );
    return new OnnxTacticalPolicy(policy, ort, sessions);
  }

  override async decideAsync(input: DecisionInput, options: DecideOptions = {}): Promise<Decision> {
    const { observations, settled } = this.observe(input);
    const obs = [observations.tactical, observations.risk, observations.execution];
    const logits: Float32Array[] = [];
    for (let i = 0; i < 3; i++) {
      const x = Float32Array.from(obs[i] as number[]);
      const out = await (this.sessions[i] as Ort.InferenceSession).run({ [ONNX_INPUT]: new this.ort.Tensor('float32', x, [1, x.length]) });
      logits.push(out[ONNX_OUTPUT]?.data as Float32Array);
    }
    return this.choose(logits, observations, settled.reward, options);
  }

  /** Releases the ONNX sessions. */
  async release(): Promise<void> {
    await Promise.all(this.sessions.map((s) => s.release()));
  }
}

/** Inference backends of live decisions (`PIPELINE_INFERENCE`). */
export type InferenceBackend = 'wasm' | 'onnx';

/** The policy as the chosen backend serves it. */
export async function withInference(policy: TacticalPolicy, backend: InferenceBackend): Promise<TacticalPolicy> {
  return backend === 'onnx' ? OnnxTacticalPolicy.from(policy) : policy;
}
