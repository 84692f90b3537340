import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { UserError } from '../../errors.ts';

/**
 * Reads a TensorFlow.js model (model.json + weight shards) into plain data: the GraphDef nodes and the
 * graph's outputs (or, for a layers model, its Keras topology), and the dequantized weights by name.
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

/** A Keras layer as a TF.js layers model stores it. */
export interface KerasLayer {
  class_name: string;
  name?: string;
  config: Record<string, unknown> & { name: string };
  /** Per call of the layer: its inputs as [layer name, node index, tensor index, kwargs]. */
  inbound_nodes: [string, number, number, unknown?][][];
}

/** `modelTopology.model_config` of a layers model. */
export interface KerasModelConfig {
  class_name: string;
  config: { layers: KerasLayer[]; input_layers?: [string, number, number][]; output_layers?: [string, number, number][] };
}

/** A layers model before lowering (src/onnx/tfjs/layers.ts turns it into a TfGraphModel). */
export interface TfLayersModel {
  path: string;
  modelConfig: KerasModelConfig;
  weights: Map<string, TfWeight>;
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
  modelTopology?: { node?: TfNode[]; model_config?: KerasModelConfig };
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

/**
 * Where a model's JSON and weight shards come from: `model.json` beside its `.bin` shards, or a bundle
 * as nsfwjs ships its models (`model.min.js` and `<shard>.min.js` beside it, browserify modules that
 * return the model JSON and each shard's bytes in base64).
 */
interface Source {
  json(): Promise<ModelJson>;
  shard(manifestPath: string): Promise<Buffer>;
  /** The files whose bytes decide the model, in manifest order. */
  files(json: ModelJson): string[];
}

const isBundle = (path: string) => path.endsWith('.js');

function fileSource(path: string): Source {
  return {
    json: async () => JSON.parse(await readFile(path, 'utf8')) as ModelJson,
    shard: (p) => readFile(join(dirname(path), p)),
    files: (json) => [path, ...(json.weightsManifest ?? []).flatMap((g) => g.paths.map((p) => join(dirname(path), p)))],
  };
}

function bundleSource(path: string): Source {
  const load = (file: string): unknown => createRequire(import.meta.url)(file);
  const shardFile = (p: string) => join(dirname(path), `${p}.min.js`);
  return {
    json: async () => load(path) as ModelJson,
    shard: async (p) => {
      const text = load(shardFile(p));
      if (typeof text !== 'string') throw new Error(`${shardFile(p)} does not export a base64 string`);
      return Buffer.from(text, 'base64');
    },
    files: (json) => [path, ...(json.weightsManifest ?? []).flatMap((g) => g.paths.map(shardFile))],
  };
}

const sourceOf = (path: string) => (isBundle(path) ? bundleSource(path) : fileSource(path));

async function readJson(path: string, source: Source): Promise<ModelJson> {
  try {
    return await source.json();
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    const missing = code === 'ENOENT' || code === 'MODULE_NOT_FOUND';
    throw new UserError(missing ? `TF.js model not found: ${path}` : `cannot read TF.js model ${path}: ${(e as Error).message}`, { cause: e });
  }
}

/** The model file and its weight shards (for a digest that changes whenever the weights do). */
export async function tfjsModelFiles(modelPath: string): Promise<string[]> {
  const source = sourceOf(modelPath);
  return source.files(await readJson(modelPath, source));
}

/**
 * Read a TF.js model (model.json, or an nsfwjs-style model.min.js bundle) and its weight shards. A
 * layers model (a Keras topology) comes back as such, for src/onnx/tfjs/layers.ts to lower to graph nodes.
 */
export async function readTfjsModel(modelPath: string): Promise<TfGraphModel | TfLayersModel> {
  const source = sourceOf(modelPath);
  const json = await readJson(modelPath, source);
  const layers = json.format === 'layers-model' || (json.format === undefined && json.modelTopology?.model_config !== undefined);
  if (json.format !== undefined && json.format !== 'graph-model' && !layers) {
    throw new UserError(`${modelPath}: format is "${json.format}"; expected a TF.js "graph-model" or "layers-model"`);
  }
  const nodes = json.modelTopology?.node;
  if ((layers ? typeof json.modelTopology !== 'object' : !Array.isArray(nodes)) || !Array.isArray(json.weightsManifest)) {
    throw new UserError(`${modelPath}: expected a TF.js graph model with modelTopology.node and weightsManifest, or a layers model with modelTopology.model_config`);
  }

  const weights = new Map<string, TfWeight>();
  for (const group of json.weightsManifest) {
    const shards: Buffer[] = [];
    for (const p of group.paths) {
      try {
        shards.push(await source.shard(p));
      } catch (e) {
        throw new UserError(`${modelPath}: cannot read weight shard ${p}: ${(e as Error).message}`, { cause: e });
      }
    }
    const bytes = Buffer.concat(shards);
    let offset = 0;
    for (const spec of group.weights) {
      const size = weightSize(modelPath, spec);
      if (offset + size > bytes.length) {
        throw new UserError(`${modelPath}: weight shards hold ${bytes.length} bytes but weight ${spec.name} needs bytes ${offset}..${offset + size}`);
      }
      weights.set(spec.name, decodeWeight(modelPath, spec, bytes.subarray(offset, offset + size)));
      offset += size;
    }
  }
  // nsfwjs nests the Keras model under `model_config`; tfjs-layers' own save puts it at the top.
  if (layers) return { path: modelPath, modelConfig: json.modelTopology!.model_config ?? (json.modelTopology as unknown as KerasModelConfig), weights };
  return { path: modelPath, nodes: nodes!, weights, outputs: graphOutputs(modelPath, nodes!, json) };
}

function graphOutputs(path: string, nodes: TfNode[], json: ModelJson): TfGraphModel['outputs'] {
  const byName = new Set(nodes.map((n) => n.name));
  const signatureOutputs = json.signature?.outputs ?? {};
  if (Object.keys(signatureOutputs).length > 0) {
    return Object.entries(signatureOutputs).map(([key, entry]) => {
      const [node, index] = parseInputName(entry.name);
      if (!byName.has(node)) throw new UserError(`${path}: signature output ${key} names node ${node}, which is not in the graph`);
      return { key, node, index };
    });
  }
  // TF.js's rule without a signature: every node that no other node consumes is an output.
  const consumed = new Set(nodes.flatMap((n) => (n.input ?? []).map((i) => parseInputName(i.replace(/^\^/, ''))[0])));
  return nodes.filter((n) => !consumed.has(n.name)).map((n) => ({ key: n.name, node: n.name, index: 0 }));
}
