import * as ort from 'onnxruntime-node';
import { openSession, type RuntimeConfig } from './session.ts';
import { UserError } from '../errors.ts';
import { fromOrtTensor, toOrtTensor } from './dtypes.ts';

/** A float32 tensor on the JS side; dtype conversion to the model's own types happens at the boundary. */
export interface Tensor {
  data: Float32Array;
  dims: number[];
}

export interface IoInfo {
  type: string;
  /** Fixed sizes as numbers, symbolic ones as their names. */
  shape: (number | string)[];
}

/**
 * An ONNX model run with float32 tensors (a diffusers folder's text encoder, UNet or VAE half): knows its
 * inputs and outputs, and converts float32 <-> float16 / int32 / int64 when it runs (dtypes.ts).
 */
export class OnnxModel {
  readonly inputs = new Map<string, IoInfo>();
  readonly outputs = new Map<string, IoInfo>();

  private constructor(readonly path: string, private readonly session: ort.InferenceSession) {
    for (const m of session.inputMetadata) if (m.isTensor) this.inputs.set(m.name, { type: m.type, shape: [...m.shape] });
    for (const m of session.outputMetadata) if (m.isTensor) this.outputs.set(m.name, { type: m.type, shape: [...m.shape] });
  }

  static async open(path: string, runtime: RuntimeConfig): Promise<OnnxModel> {
    return new OnnxModel(path, await openSession(path, runtime));
  }

  input(name: string): IoInfo {
    const info = this.inputs.get(name);
    if (!info) throw new UserError(`ONNX model ${this.path} has no input ${name} (it has: ${[...this.inputs.keys()].join(', ')})`);
    return info;
  }

  /** Run with float32 / plain-number feeds; returns the named outputs as float32. */
  async run(feeds: Record<string, { data: Float32Array | ArrayLike<number>; dims: number[] }>, outputs: string[]): Promise<Tensor[]> {
    const ortFeeds: Record<string, ort.Tensor> = {};
    for (const [name, feed] of Object.entries(feeds)) ortFeeds[name] = toOrtTensor(this.input(name).type, feed.data, feed.dims, this.path, name);
    const result = await this.session.run(ortFeeds, outputs);
    return outputs.map((name) => fromOrtTensor(result[name], this.path, name));
  }

  async release(): Promise<void> {
    await this.session.release();
  }
}
