import * as ort from 'onnxruntime-node';
import { openSession, type RuntimeConfig } from './session.ts';
import { UserError } from '../errors.ts';

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
 * One ONNX model of a diffusers folder (text encoder, UNet, VAE half): knows its inputs and outputs,
 * checks them once at load, and converts float32 <-> float16 / int32 / int64 when it runs.
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

  /** Throws a UserError naming the model, what is missing and what the model has instead. */
  expect(inputs: string[], outputs: string[] = []): void {
    const missingIn = inputs.filter((n) => !this.inputs.has(n));
    const missingOut = outputs.filter((n) => !this.outputs.has(n));
    if (missingIn.length === 0 && missingOut.length === 0) return;
    const parts = [];
    if (missingIn.length) parts.push(`lacks input(s) ${missingIn.join(', ')} (it has: ${[...this.inputs.keys()].join(', ')})`);
    if (missingOut.length) parts.push(`lacks output(s) ${missingOut.join(', ')} (it has: ${[...this.outputs.keys()].join(', ')})`);
    throw new UserError(`ONNX model ${this.path} ${parts.join('; ')}`);
  }

  input(name: string): IoInfo {
    const info = this.inputs.get(name);
    if (!info) throw new UserError(`ONNX model ${this.path} has no input ${name} (it has: ${[...this.inputs.keys()].join(', ')})`);
    return info;
  }

  /** Run with float32 / plain-number feeds; returns the named outputs as float32. */
  async run(feeds: Record<string, { data: Float32Array | ArrayLike<number>; dims: number[] }>, outputs: string[]): Promise<Tensor[]> {
    const ortFeeds: Record<string, ort.Tensor> = {};
    for (const [name, feed] of Object.entries(feeds)) ortFeeds[name] = toOrt(this.input(name).type, feed.data, feed.dims, this.path, name);
    const result = await this.session.run(ortFeeds, outputs);
    return outputs.map((name) => fromOrt(result[name], this.path, name));
  }

  async release(): Promise<void> {
    await this.session.release();
  }
}

function toOrt(type: string, data: Float32Array | ArrayLike<number>, dims: number[], path: string, name: string): ort.Tensor {
  switch (type) {
    case 'float32':
      return new ort.Tensor('float32', data instanceof Float32Array ? data : Float32Array.from(data), dims);
    case 'float16':
      return new ort.Tensor('float16', toHalf(data), dims);
    case 'int32':
      return new ort.Tensor('int32', Int32Array.from(data), dims);
    case 'int64':
      return new ort.Tensor('int64', BigInt64Array.from(Array.from(data, (v) => BigInt(Math.trunc(v)))), dims);
    default:
      throw new UserError(`ONNX model ${path}: input ${name} has type ${type}; expected float32, float16, int32 or int64`);
  }
}

function fromOrt(t: ort.Tensor | undefined, path: string, name: string): Tensor {
  if (!t) throw new UserError(`ONNX model ${path} returned no output ${name}`);
  const dims = [...t.dims];
  if (t.type === 'float32') return { data: t.data as Float32Array, dims };
  if (t.type === 'float16') return { data: fromHalf(t.data as Uint16Array), dims };
  throw new UserError(`ONNX model ${path}: output ${name} has type ${t.type}; expected float32 or float16`);
}

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** float32 → IEEE half bit patterns, round to nearest even (what numpy and torch do). */
function toHalf(data: ArrayLike<number>): Uint16Array {
  const out = new Uint16Array(data.length);
  for (let i = 0; i < data.length; i++) {
    f32[0] = data[i];
    const x = u32[0];
    const sign = (x >>> 16) & 0x8000;
    const exp = (x >>> 23) & 0xff;
    let mant = x & 0x7fffff;
    if (exp === 0xff) {
      out[i] = sign | 0x7c00 | (mant ? 0x200 : 0);
      continue;
    }
    const e = exp - 127 + 15;
    if (e >= 0x1f) {
      out[i] = sign | 0x7c00;
    } else if (e <= 0) {
      if (e < -10) {
        out[i] = sign;
        continue;
      }
      mant |= 0x800000;
      const shift = 14 - e;
      let h = mant >>> shift;
      const rem = mant & ((1 << shift) - 1);
      const half = 1 << (shift - 1);
      if (rem > half || (rem === half && (h & 1))) h++;
      out[i] = sign | h;
    } else {
      let h = (e << 10) | (mant >>> 13);
      const rem = mant & 0x1fff;
      if (rem > 0x1000 || (rem === 0x1000 && (h & 1))) h++;
      out[i] = sign | h; // a carry into the exponent is the correct rounding (up to inf)
    }
  }
  return out;
}

function fromHalf(bits: Uint16Array): Float32Array {
  const out = new Float32Array(bits.length);
  for (let i = 0; i < bits.length; i++) {
    const h = bits[i];
    const sign = h & 0x8000 ? -1 : 1;
    const exp = (h >>> 10) & 0x1f;
    const mant = h & 0x3ff;
    if (exp === 0) out[i] = sign * mant * 2 ** -24;
    else if (exp === 0x1f) out[i] = mant ? NaN : sign * Infinity;
    else out[i] = sign * (1 + mant / 1024) * 2 ** (exp - 15);
  }
  return out;
}
