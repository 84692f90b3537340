import { UserError } from '../../errors.ts';
import type { KerasLayer, TfAttr, TfGraphModel, TfLayersModel, TfNode, TfWeight } from './model.ts';

/**
 * A TF.js layers model (a Keras functional `Model`) lowered to the TF graph nodes the converter reads,
 * each layer becoming the ops TensorFlow itself runs for it: Conv2D → Conv2D + BiasAdd + activation,
 * BatchNormalization → FusedBatchNormV3, Flatten → Shape / StridedSlice / Pack / Reshape, and so on.
 * The last node of a layer carries the layer's name, so a layer's inputs name their source layers.
 * Layer kinds and options not listed in LAYERS stop the lowering with a UserError naming the layer.
 */

const b64 = (s: string) => Buffer.from(s).toString('base64');
const attr = {
  s: (v: string): TfAttr => ({ s: b64(v) }),
  ints: (v: number[]): TfAttr => ({ list: { i: v.map(String) } }),
  i: (v: number): TfAttr => ({ i: String(v) }),
  f: (v: number): TfAttr => ({ f: v }),
  b: (v: boolean): TfAttr => ({ b: v }),
};

class Lowering {
  readonly nodes: TfNode[] = [];
  private readonly names = new Set<string>();
  constructor(private readonly model: TfLayersModel) {}

  fail(layer: KerasLayer, msg: string): never {
    throw new UserError(`${this.model.path}: layer ${layer.config.name} (${layer.class_name}): ${msg}`);
  }

  node(name: string, op: string, input: string[], attrs: Record<string, TfAttr> = {}): string {
    this.nodes.push({ name, op, input, attr: attrs });
    this.names.add(name);
    return name;
  }

  /** A constant the lowering makes (a shape, an axis, a batch-norm default), stored as a weight. */
  constant(name: string, dtype: 'float32' | 'int32', shape: number[], values: number[]): string {
    const data = dtype === 'float32' ? Float32Array.from(values) : Int32Array.from(values);
    this.model.weights.set(name, { dtype, shape, data });
    return this.node(name, 'Const', []);
  }

  /** The layer's stored weight `<layer>/<param>` as a Const node. */
  weight(layer: KerasLayer, param: string): string {
    const name = `${layer.config.name}/${param}`;
    if (!this.model.weights.has(name)) this.fail(layer, `weight ${name} is not in the weights manifest`);
    if (!this.names.has(name)) this.node(name, 'Const', []);
    return name;
  }

  weightShape(layer: KerasLayer, param: string): number[] {
    return (this.model.weights.get(`${layer.config.name}/${param}`) as TfWeight).shape;
  }

  /** A Keras activation by name after `x`; the last op takes the name `out`. */
  activation(layer: KerasLayer, x: string, activation: unknown, out: string): string {
    const name = activation ?? 'linear';
    if (name === 'linear') return x === out ? x : this.node(out, 'Identity', [x]);
    const op = ACTIVATIONS[name as string];
    if (!op) this.fail(layer, `activation ${String(name)} is not supported; the lowering handles ${['linear', ...Object.keys(ACTIVATIONS)].join(', ')}`);
    return this.node(out, op, [x]);
  }

  /** Bias (when the layer has one) and activation after the layer's main op `x`, ending in the layer's name. */
  biasAndActivation(layer: KerasLayer, x: string): string {
    const name = layer.config.name;
    const c = layer.config;
    let y = x;
    if (c.use_bias !== false) y = this.node(`${name}/BiasAdd`, 'BiasAdd', [y, this.weight(layer, 'bias')], { data_format: attr.s('NHWC') });
    return this.activation(layer, y, c.activation, name);
  }
}

const ACTIVATIONS: Record<string, string> = { relu: 'Relu', relu6: 'Relu6', sigmoid: 'Sigmoid', tanh: 'Tanh', softmax: 'Softmax', elu: 'Elu' };

const pair = (v: unknown): [number, number] => (Array.isArray(v) ? [Number(v[0]), Number(v[1] ?? v[0])] : [Number(v), Number(v)]);

function convAttrs(low: Lowering, layer: KerasLayer): Record<string, TfAttr> {
  const c = layer.config;
  if ((c.data_format ?? 'channels_last') !== 'channels_last') low.fail(layer, `data_format ${c.data_format} is not supported; expected channels_last`);
  if (Number(c.groups ?? 1) !== 1) low.fail(layer, `groups ${c.groups} is not supported; expected 1`);
  const padding = String(c.padding ?? 'valid');
  if (padding !== 'valid' && padding !== 'same') low.fail(layer, `padding ${padding} is not supported`);
  const [sh, sw] = pair(c.strides ?? 1);
  const [dh, dw] = pair(c.dilation_rate ?? 1);
  return { strides: attr.ints([1, sh, sw, 1]), dilations: attr.ints([1, dh, dw, 1]), padding: attr.s(padding.toUpperCase()), data_format: attr.s('NHWC') };
}

type Lower = (low: Lowering, layer: KerasLayer, inputs: string[]) => string;

const LAYERS: Record<string, Lower> = {
  Conv2D: (low, layer, [x]) => {
    const y = low.node(`${layer.config.name}/Conv2D`, 'Conv2D', [x, low.weight(layer, 'kernel')], convAttrs(low, layer));
    return low.biasAndActivation(layer, y);
  },

  DepthwiseConv2D: (low, layer, [x]) => {
    const y = low.node(`${layer.config.name}/depthwise`, 'DepthwiseConv2dNative', [x, low.weight(layer, 'depthwise_kernel')], convAttrs(low, layer));
    return low.biasAndActivation(layer, y);
  },

  Dense: (low, layer, [x]) => {
    const y = low.node(`${layer.config.name}/MatMul`, 'MatMul', [x, low.weight(layer, 'kernel')], { transpose_a: attr.b(false), transpose_b: attr.b(false) });
    return low.biasAndActivation(layer, y);
  },

  BatchNormalization: (low, layer, [x]) => {
    const c = layer.config;
    const name = c.name;
    if (c.axis !== -1 && c.axis !== 3 && !(Array.isArray(c.axis) && c.axis.length === 1 && c.axis[0] === 3)) low.fail(layer, `axis ${JSON.stringify(c.axis)} is not supported; expected the channel axis (-1 or 3)`);
    const mean = low.weight(layer, 'moving_mean');
    const channels = low.weightShape(layer, 'moving_mean')[0];
    const param = (p: string, on: unknown, fill: number) => (on === false ? low.constant(`${name}/${p}_default`, 'float32', [channels], new Array(channels).fill(fill)) : low.weight(layer, p));
    const inputs = [x, param('gamma', c.scale, 1), param('beta', c.center, 0), mean, low.weight(layer, 'moving_variance')];
    return low.node(name, 'FusedBatchNormV3', inputs, { epsilon: attr.f(Number(c.epsilon ?? 1e-3)), data_format: attr.s('NHWC'), is_training: attr.b(false) });
  },

  ReLU: (low, layer, [x]) => {
    const c = layer.config;
    if (Number(c.negative_slope ?? 0) !== 0 || Number(c.threshold ?? 0) !== 0) low.fail(layer, 'negative_slope and threshold other than 0 are not supported');
    if (c.max_value === null || c.max_value === undefined) return low.node(c.name, 'Relu', [x]);
    if (Number(c.max_value) === 6) return low.node(c.name, 'Relu6', [x]);
    return low.fail(layer, `max_value ${c.max_value} is not supported; expected none or 6`);
  },

  Activation: (low, layer, [x]) => low.activation(layer, x, layer.config.activation, layer.config.name),

  Add: (low, layer, inputs) => low.node(layer.config.name, 'AddN', inputs),

  ZeroPadding2D: (low, layer, [x]) => {
    const p = layer.config.padding;
    // Keras: one number, [symmetric rows, symmetric columns], or [[top, bottom], [left, right]].
    const [rows, cols] = Array.isArray(p) ? [pair(p[0]), pair(p[1])] : [pair(p), pair(p)];
    const pads = low.constant(`${layer.config.name}/paddings`, 'int32', [4, 2], [0, 0, ...rows, ...cols, 0, 0]);
    return low.node(layer.config.name, 'Pad', [x, pads]);
  },

  AveragePooling2D: (low, layer, [x]) => pool(low, layer, x, 'AvgPool'),
  MaxPooling2D: (low, layer, [x]) => pool(low, layer, x, 'MaxPool'),

  GlobalAveragePooling2D: (low, layer, [x]) => {
    if (layer.config.keepdims === true) low.fail(layer, 'keepdims is not supported');
    return low.node(layer.config.name, 'Mean', [x, low.constant(`${layer.config.name}/axes`, 'int32', [2], [1, 2])], { keep_dims: attr.b(false) });
  },

  // [batch, ...] → [batch, product of the rest], the batch read from the input's shape as TF does.
  Flatten: (low, layer, [x]) => {
    const name = layer.config.name;
    const shape = low.node(`${name}/Shape`, 'Shape', [x]);
    const c = (n: string, v: number[]) => low.constant(`${name}/${n}`, 'int32', [v.length], v);
    const batch = low.node(`${name}/strided_slice`, 'StridedSlice', [shape, c('begin', [0]), c('end', [1]), c('strides', [1])], { shrink_axis_mask: attr.i(1) });
    const rest = low.constant(`${name}/rest`, 'int32', [], [-1]);
    return low.node(name, 'Reshape', [x, low.node(`${name}/shape`, 'Pack', [batch, rest], { axis: attr.i(0) })]);
  },

  Dropout: (low, layer, [x]) => low.node(layer.config.name, 'Identity', [x]),
};

function pool(low: Lowering, layer: KerasLayer, x: string, op: string): string {
  const c = layer.config;
  if ((c.data_format ?? 'channels_last') !== 'channels_last') low.fail(layer, `data_format ${c.data_format} is not supported; expected channels_last`);
  const [ph, pw] = pair(c.pool_size ?? 2);
  const [sh, sw] = pair(c.strides ?? c.pool_size ?? 2);
  const padding = String(c.padding ?? 'valid');
  if (padding !== 'valid' && padding !== 'same') low.fail(layer, `padding ${padding} is not supported`);
  return low.node(c.name, op, [x], { ksize: attr.ints([1, ph, pw, 1]), strides: attr.ints([1, sh, sw, 1]), padding: attr.s(padding.toUpperCase()), data_format: attr.s('NHWC') });
}

function inputLayer(low: Lowering, layer: KerasLayer): string {
  const shape = (layer.config.batch_input_shape ?? layer.config.batch_shape) as (number | null)[] | undefined;
  if (!Array.isArray(shape)) low.fail(layer, 'the input layer has no batch_input_shape');
  if ((layer.config.dtype ?? 'float32') !== 'float32') low.fail(layer, `input dtype ${layer.config.dtype} is not supported; expected float32`);
  const dim = shape.map((d) => ({ size: String(d ?? -1) }));
  return low.node(layer.config.name, 'Placeholder', [], { dtype: { type: 'DT_FLOAT' }, shape: { shape: { dim } } as TfAttr });
}

export const SUPPORTED_LAYERS = ['InputLayer', ...Object.keys(LAYERS)];

/** The layers model as graph nodes, its outputs named after the output layers. */
export function lowerLayersModel(model: TfLayersModel): TfGraphModel {
  const { modelConfig } = model;
  if (modelConfig.class_name !== 'Model' && modelConfig.class_name !== 'Functional') {
    throw new UserError(`${model.path}: a ${modelConfig.class_name} layers model is not supported; expected a functional Model`);
  }
  if (!Array.isArray(modelConfig?.config?.layers)) throw new UserError(`${model.path}: expected a Keras model topology with config.layers`);
  const low = new Lowering(model);
  for (const layer of modelConfig.config.layers) {
    layer.config.name ??= layer.name!;
    if (layer.class_name === 'InputLayer') {
      inputLayer(low, layer);
      continue;
    }
    const lower = LAYERS[layer.class_name];
    if (!lower) low.fail(layer, `unsupported layer; the lowering handles ${SUPPORTED_LAYERS.join(', ')}`);
    const calls = layer.inbound_nodes;
    if (!Array.isArray(calls) || calls.length !== 1 || !Array.isArray(calls[0])) low.fail(layer, 'expected one call of the layer (shared layers are not supported)');
    const inputs = calls[0].map((entry) => {
      if (!Array.isArray(entry) || entry[1] !== 0 || entry[2] !== 0) low.fail(layer, `input ${JSON.stringify(entry)} is not supported (expected [layer, 0, 0, kwargs])`);
      return entry[0];
    });
    lower(low, layer, inputs);
  }
  const outputs = (modelConfig.config.output_layers ?? []).map(([name, nodeIndex, tensorIndex]) => {
    if (nodeIndex !== 0 || tensorIndex !== 0) throw new UserError(`${model.path}: output ${name}[${nodeIndex}][${tensorIndex}] is not supported (expected the layer's only output)`);
    return { key: name, node: name, index: 0 };
  });
  if (outputs.length === 0) throw new UserError(`${model.path}: the layers model names no output_layers`);
  return { path: model.path, nodes: low.nodes, weights: model.weights, outputs };
}
