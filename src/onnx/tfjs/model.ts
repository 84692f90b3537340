import { readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { UserError } from '../../errors.ts';

/**
 * Reads a TensorFlow.js graph model (model.json + weight shards) into plain data: the GraphDef nodes,
 * the dequantized weights by name, and the signature's inputs and outputs.
 */

export interface TfAttr {
  s?: string;
  i?: string | number;
  f?: number;
  b?: boolean;
  type?: string;
  shape?: { dim?: { size: string | number }[]; unknownRank?: boolean };
  list?: { s?: string[]; i?: (string | number)[]; f?: number[] };
  tensor?: unknown;
}

export interface TfNode {
  name: string;
  op: string;
  input?: string[];
  attr?: Record<string, TfAttr>;
}

/** A weight after dequantization: floats as Float32Array, integers and bools as Int32Array. */
export interface TfWeight {
  dtype: 'float32' | 'int32' | 'bool';
  shape: number[];
  data: Float32Array | Int32Array;
}

export interface TfGraphModel {
  path: string;
  nodes: TfNode[];
  weights: Map<string, TfWeight>;
  /** Graph outputs as TF.js names them (signature keys, or the nodes nothing consumes). */
  outputs: { key: string; node: string; index: number }[];
}

interface WeightSpec {
  name: string;
  shape: number[];
  dtype: string;
  quantization?: { dtype: string; scale?: number; min?: number; original_dtype?: string };
}

interface ModelJson {
  format?: string;
  modelTopology?: { node?: TfNode[] };
  weightsManifest?: { paths: string[]; weights: WeightSpec[] }[];
  signature?: { outputs?: Record<string, { name: string }> };
}

/** "node:1" → ["node", 1]; a bare name is output 0. Control inputs ("^node") are not data inputs. */
export function parseInputName(input: string): [string, number] {
  const m = /^(.*):(\d+)$/.exec(input);
  return m ? [m[1], Number(m[2])] : [input, 0];
}

function float16ToFloat32(bits: number): number {
  const sign = bits & 0x8000 ? -1 : 1;
  const exponent = (bits >> 10) & 0x1f;
  const fraction = bits & 0x3ff;
  if (exponent === 0) return sign * 2 ** -14 * (fraction / 1024);
  if (exponent === 0x1f) return fraction ? NaN : sign * Infinity;
  return sign * 2 ** (exponent - 15) * (1 + fraction / 1024);
}

const BYTES: Record<string, number> = { float32: 4, int32: 4, bool: 1, float16: 2, uint8: 1, uint16: 2 };

function decodeWeight(path: string, spec: WeightSpec, bytes: Uint8Array): TfWeight {
  const count = spec.shape.reduce((a, b) => a * b, 1);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const q = spec.quantization;
  if (spec.dtype !== 'float32' && spec.dtype !== 'int32' && spec.dtype !== 'bool') {
    throw new UserError(`${path}: weight ${spec.name} has dtype ${spec.dtype}; expected float32, int32 or bool`);
  }
  const out = spec.dtype === 'float32' ? new Float32Array(count) : new Int32Array(count);
  for (let i = 0; i < count; i++) {
    let v: number;
    if (!q) v = spec.dtype === 'bool' ? view.getUint8(i) : spec.dtype === 'int32' ? view.getInt32(i * 4, true) : view.getFloat32(i * 4, true);
    else if (q.dtype === 'float16') v = float16ToFloat32(view.getUint16(i * 2, true));
    else {
      const raw = q.dtype === 'uint8' ? view.getUint8(i) : view.getUint16(i * 2, true);
      v = raw * q.scale! + q.min!;
      if (spec.dtype !== 'float32') v = Math.round(v);
    }
    out[i] = v;
  }
  return { dtype: spec.dtype, shape: spec.shape, data: out };
}

function weightSize(path: string, spec: WeightSpec): number {
  const q = spec.quantization;
  const dtype = q ? q.dtype : spec.dtype;
  if (!(dtype in BYTES)) throw new UserError(`${path}: weight ${spec.name} is stored as ${dtype}; expected float32, int32, bool, float16, uint8 or uint16`);
  if (q && (q.dtype === 'uint8' || q.dtype === 'uint16') && (typeof q.scale !== 'number' || typeof q.min !== 'number')) {
    throw new UserError(`${path}: weight ${spec.name} is ${q.dtype}-quantized but has no numeric quantization.scale and quantization.min`);
  }
  return spec.shape.reduce((a, b) => a * b, 1) * BYTES[dtype];
}

/** Read model.json and its weight shards (paths relative to model.json). */
export async function readTfjsGraphModel(modelJsonPath: string): Promise<TfGraphModel> {
  let json: ModelJson;
  try {
    json = JSON.parse(await readFile(modelJsonPath, 'utf8')) as ModelJson;
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new UserError(code === 'ENOENT' ? `TF.js model not found: ${modelJsonPath}` : `cannot read TF.js model ${modelJsonPath}: ${(e as Error).message}`, { cause: e });
  }
  const nodes = json.modelTopology?.node;
  if (json.format !== undefined && json.format !== 'graph-model') {
    throw new UserError(`${modelJsonPath}: format is "${json.format}"; expected a TF.js "graph-model" (layers models are not supported)`);
  }
  if (!Array.isArray(nodes) || !Array.isArray(json.weightsManifest)) {
    throw new UserError(`${modelJsonPath}: expected a TF.js graph model with modelTopology.node and weightsManifest`);
  }

  const weights = new Map<string, TfWeight>();
  for (const group of json.weightsManifest) {
    const shards: Buffer[] = [];
    for (const p of group.paths) {
      const shardPath = join(dirname(modelJsonPath), p);
      try {
        shards.push(await readFile(shardPath));
      } catch (e) {
        throw new UserError(`${modelJsonPath}: cannot read weight shard ${shardPath}: ${(e as Error).message}`, { cause: e });
      }
    }
    const bytes = Buffer.concat(shards);
    let offset = 0;
    for (const spec of group.weights) {
      const size = weightSize(modelJsonPath, spec);
      if (offset + size > bytes.length) {
        throw new UserError(`${modelJsonPath}: weight shards hold ${bytes.length} bytes but weight ${spec.name} needs bytes ${offset}..${offset + size}`);
      }
      weights.set(spec.name, decodeWeight(modelJsonPath, spec, bytes.subarray(offset, offset + size)));
      offset += size;
    }
  }

  const byName = new Set(nodes.map((n) => n.name));
  let outputs: TfGraphModel['outputs'];
  const signatureOutputs = json.signature?.outputs ?? {};
  if (Object.keys(signatureOutputs).length > 0) {
    outputs = Object.entries(signatureOutputs).map(([key, entry]) => {
      const [node, index] = parseInputName(entry.name);
      if (!byName.has(node)) throw new UserError(`${modelJsonPath}: signature output ${key} names node ${node}, which is not in the graph`);
      return { key, node, index };
    });
  } else {
    // TF.js's rule without a signature: every node that no other node consumes is an output.
    const consumed = new Set(nodes.flatMap((n) => (n.input ?? []).map((i) => parseInputName(i.replace(/^\^/, ''))[0])));
    outputs = nodes.filter((n) => !consumed.has(n.name)).map((n) => ({ key: n.name, node: n.name, index: 0 }));
  }
  return { path: modelJsonPath, nodes, weights, outputs };
}
