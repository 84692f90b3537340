import * as ort from 'onnxruntime-node';
import { UserError } from '../errors.ts';

/**
 * Element types at the boundary between float32 JS arrays and a model's own tensors: models take and
 * give float32 or float16 (fp16 exports), and take int32 or int64 ids and timesteps.
 */
export const FLOAT_TYPES: readonly string[] = ['float32', 'float16'];
export const INT_TYPES: readonly string[] = ['int32', 'int64'];

/** float32 / plain numbers → an onnxruntime tensor of the input's own type (`path` and `name` are for errors). */
export function toOrtTensor(type: string, data: Float32Array | ArrayLike<number>, dims: number[], path: string, name: string): ort.Tensor {
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

/** A float32 or float16 output → float32 values and its dims. */
export function fromOrtTensor(t: ort.Tensor | undefined, path: string, name: string): { data: Float32Array; dims: number[] } {
  if (!t) throw new UserError(`ONNX model ${path} returned no output ${name}`);
  const dims = [...t.dims];
  if (t.type === 'float32') return { data: t.data as Float32Array, dims };
  if (t.type === 'float16') return { data: fromHalf(t.data as Uint16Array), dims };
  throw new UserError(`ONNX model ${path}: output ${name} has type ${t.type}; expected float32 or float16`);
}

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** float32 → IEEE half bit patterns, round to nearest even (what numpy and torch do). */
export function toHalf(data: ArrayLike<number>): Uint16Array {
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

/** IEEE half bit patterns → float32 (exact: every half is a float32). */
export function fromHalf(bits: Uint16Array): Float32Array {
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
