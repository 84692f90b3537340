import { readFileSync, writeFileSync } from 'node:fs';
import { UserError } from '../errors.ts';

/**
 * A small reader/writer for NumPy's .npy format (version 1.0-3.0), little-endian float32 only:
 * what `pairgen sample` exchanges with Python (latents, images). Written here because no npm
 * package we trust does just this; the format is a 10-byte preamble, a Python-dict header, raw data.
 */
export interface NpyArray {
  shape: number[];
  data: Float32Array;
}

const MAGIC = '\x93NUMPY';

export function readNpy(path: string): NpyArray {
  let buf: Buffer;
  try {
    buf = readFileSync(path);
  } catch (e) {
    throw new UserError(`cannot read ${path}: ${(e as Error).message}`);
  }
  const bad = (what: string) => new UserError(`${path} is not a float32 .npy file: ${what}`);
  if (buf.length < 10 || buf.toString('latin1', 0, 6) !== MAGIC) throw bad('missing the \\x93NUMPY magic');
  const major = buf[6];
  const headerLen = major === 1 ? buf.readUInt16LE(8) : buf.readUInt32LE(8);
  const start = major === 1 ? 10 : 12;
  const header = buf.toString(major === 3 ? 'utf8' : 'latin1', start, start + headerLen);
  const descr = /'descr'\s*:\s*'([^']*)'/.exec(header)?.[1];
  const fortran = /'fortran_order'\s*:\s*(True|False)/.exec(header)?.[1];
  const shapeText = /'shape'\s*:\s*\(([^)]*)\)/.exec(header)?.[1];
  if (descr === undefined || fortran === undefined || shapeText === undefined) throw bad(`unreadable header ${JSON.stringify(header.trim())}`);
  if (descr !== '<f4') throw bad(`dtype is ${descr}, expected <f4 (float32)`);
  if (fortran === 'True') throw bad('fortran_order is True, expected C order');
  const shape = shapeText.split(',').map((s) => s.trim()).filter((s) => s.length > 0).map(Number);
  const count = shape.reduce((a, b) => a * b, 1);
  const offset = start + headerLen;
  if (buf.length - offset !== count * 4) throw bad(`shape (${shape.join(', ')}) needs ${count * 4} data bytes, found ${buf.length - offset}`);
  const data = new Float32Array(count);
  for (let i = 0; i < count; i++) data[i] = buf.readFloatLE(offset + 4 * i);
  return { shape, data };
}

export function encodeNpy(array: NpyArray): Buffer {
  const shape = array.shape.length === 1 ? `(${array.shape[0]},)` : `(${array.shape.join(', ')})`;
  let header = `{'descr': '<f4', 'fortran_order': False, 'shape': ${shape}, }`;
  // The preamble + header is padded with spaces to a multiple of 64 bytes and ends in '\n'.
  const total = Math.ceil((10 + header.length + 1) / 64) * 64;
  header = header.padEnd(total - 10 - 1, ' ') + '\n';
  const out = Buffer.alloc(total + array.data.length * 4);
  out.write(MAGIC, 0, 'latin1');
  out[6] = 1;
  out[7] = 0;
  out.writeUInt16LE(header.length, 8);
  out.write(header, 10, 'latin1');
  for (let i = 0; i < array.data.length; i++) out.writeFloatLE(array.data[i], total + 4 * i);
  return out;
}

export function writeNpy(path: string, array: NpyArray): void {
  writeFileSync(path, encodeNpy(array));
}
