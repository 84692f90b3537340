/**
 * The original TF.js models, loaded from node_modules with no network, to check converted ONNX models
 * against: graph models (model.json + .bin) through tfjs-converter, layers models (nsfwjs's model.min.js
 * bundles) through tfjs-layers, exactly as nsfwjs loads them itself.
 */
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
// The @tensorflow/tfjs umbrella needs `long` at the top of node_modules, which this install lacks;
// its parts (core, backends, converter, layers) resolve their own dependencies.
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { setWasmPaths } from '@tensorflow/tfjs-backend-wasm';
import { loadGraphModel, type GraphModel } from '@tensorflow/tfjs-converter';
import { loadLayersModel, type LayersModel } from '@tensorflow/tfjs-layers';

const require = createRequire(import.meta.url);

/**
 * TF.js's WASM backend (XNNPACK kernels), about 20× faster than the pure-JS CPU backend and within
 * ~1e-6 of it on these models; `cpu` runs the pure-JS reference instead.
 */
export async function useTfjsBackend(name: 'wasm' | 'cpu' = 'wasm'): Promise<void> {
  if (name === 'wasm') setWasmPaths(join(dirname(require.resolve('@tensorflow/tfjs-backend-wasm/package.json')), 'dist') + '/');
  assert.ok(await tf.setBackend(name), `TF.js backend ${name} did not start`);
}

const arrayBuffer = (b: Buffer) => b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength) as ArrayBuffer;

/** A TF.js graph model from its model.json and weight shards. */
export async function loadTfjsGraph(modelJsonPath: string): Promise<GraphModel> {
  const json = JSON.parse(await readFile(modelJsonPath, 'utf8'));
  const shards: Buffer[] = [];
  for (const group of json.weightsManifest) for (const p of group.paths) shards.push(await readFile(join(dirname(modelJsonPath), p)));
  return loadGraphModel({
    load: async () => ({
      modelTopology: json.modelTopology,
      format: json.format,
      signature: json.signature,
      weightSpecs: json.weightsManifest.flatMap((g: { weights: unknown[] }) => g.weights),
      weightData: arrayBuffer(Buffer.concat(shards)),
    }),
  });
}

/** A TF.js layers model from an nsfwjs bundle: model.min.js returns the JSON, <shard>.min.js each shard in base64. */
export async function loadTfjsLayersBundle(modelMinJs: string): Promise<LayersModel> {
  const json = require(modelMinJs) as { modelTopology: object; weightsManifest: { paths: string[]; weights: object[] }[] };
  const shards = json.weightsManifest.flatMap((g) => g.paths.map((p) => Buffer.from(require(join(dirname(modelMinJs), `${p}.min.js`)) as string, 'base64')));
  return loadLayersModel({
    load: async () => ({ modelTopology: json.modelTopology, weightSpecs: json.weightsManifest.flatMap((g) => g.weights) as never, weightData: arrayBuffer(Buffer.concat(shards)) }),
  });
}

/** max|a − b|. */
export function maxAbsDiff(actual: ArrayLike<number>, expected: ArrayLike<number>): number {
  assert.equal(actual.length, expected.length);
  let diff = 0;
  for (let i = 0; i < expected.length; i++) diff = Math.max(diff, Math.abs(actual[i] - expected[i]));
  return diff;
}

/** max|b|. */
export function maxAbs(values: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < values.length; i++) m = Math.max(m, Math.abs(values[i]));
  return m;
}

/** max|a − b| / max|b| over one output: the error relative to the output's own scale. */
export function relativeError(actual: ArrayLike<number>, expected: ArrayLike<number>): number {
  const scale = maxAbs(expected);
  assert.ok(scale > 0, 'an all-zero reference output proves nothing');
  return maxAbsDiff(actual, expected) / scale;
}
