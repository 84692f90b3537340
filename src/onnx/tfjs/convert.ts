import { UserError } from '../../errors.ts';
import { OnnxBuilder, float, int64, type AttrValue, type Dim } from '../builder.ts';
import { lowerLayersModel } from './layers.ts';
import { parseInputName, readTfjsModel, type TfAttr, type TfGraphModel, type TfNode } from './model.ts';

/**
 * TF.js graph model → ONNX (opset 17). (A layers model is first lowered to graph nodes: layers.ts.)
 *
 * Every TF tensor is tracked with its TF (NHWC) shape. 4-D activations are kept in ONNX's NCHW order
 * from the first convolution on (the NHWC graph input is transposed once), layout-free ops (element-wise,
 * activations) pass the NCHW layout through, and ops whose meaning depends on the layout (Reshape,
 * Squeeze, MatMul, ...) get the tensor transposed back to NHWC first. Constants and shape arithmetic
 * (Shape → StridedSlice → Pack → Reshape chains) are folded in JS, so the ONNX graph holds only real work.
 * Unknown dims (a dynamic batch) are -1 in shapes and NaN in folded shape values.
 */
export const CONVERTER_VERSION = '2';

export interface ConvertOptions {
  /** NHWC input shape; -1 for a dynamic batch. Default: the model's placeholder shape. */
  inputShape?: number[];
}

type Layout = 'tf' | 'nchw';

interface Const {
  kind: 'const';
  dtype: 'float32' | 'int32' | 'bool';
  shape: number[];
  /** Floats as Float32Array; integers as plain numbers (NaN = unknown at conversion time). */
  data: Float32Array | number[];
}

interface Tensor {
  kind: 'tensor';
  /** ONNX value name. */
  name: string;
  dtype: 'float32' | 'int32';
  /** TF (NHWC) shape; -1 = unknown. */
  shape: number[];
  layout: Layout;
}

type Value = Const | Tensor;

const TO_NCHW = [0, 3, 1, 2];
const TO_NHWC = [0, 2, 3, 1];
/** Position in NCHW of each NHWC axis. */
const NCHW_POS = [0, 2, 3, 1];

const size = (shape: number[]) => shape.reduce((a, b) => a * b, 1);

/** Output length of a convolution or pooling window (kernel k, stride s, dilation d) over `length` cells padded by p0 + p1. */
const windowOut = (length: number, k: number, s: number, d: number, p0: number, p1: number) => Math.floor((length + p0 + p1 - ((k - 1) * d + 1)) / s) + 1;

function transposeData<T extends Float32Array | number[]>(data: T, shape: number[], perm: number[]): T {
  const outShape = perm.map((p) => shape[p]);
  const inStrides = shape.map((_, i) => size(shape.slice(i + 1)));
  const out = (data instanceof Float32Array ? new Float32Array(data.length) : new Array<number>(data.length)) as T;
  const idx = new Array(outShape.length).fill(0);
  for (let o = 0; o < data.length; o++) {
    let src = 0;
    for (let d = 0; d < idx.length; d++) src += idx[d] * inStrides[perm[d]];
    out[o] = data[src];
    for (let d = idx.length - 1; d >= 0; d--) {
      if (++idx[d] < outShape[d]) break;
      idx[d] = 0;
    }
  }
  return out;
}

function broadcastShape(a: number[], b: number[], where: string): number[] {
  const n = Math.max(a.length, b.length);
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const x = a[a.length - n + i] ?? 1;
    const y = b[b.length - n + i] ?? 1;
    if (x !== y && x !== 1 && y !== 1 && x !== -1 && y !== -1) throw new UserError(`${where}: shapes [${a}] and [${b}] do not broadcast`);
    out.push(x === 1 ? y : x);
  }
  return out;
}

/** Element-wise binary op on constants with numpy broadcasting. */
function foldBinary(a: Const, b: Const, f: (x: number, y: number) => number, where: string): Const {
  const shape = broadcastShape(a.shape, b.shape, where);
  const n = size(shape);
  const float = a.dtype === 'float32' || b.dtype === 'float32';
  const out = float ? new Float32Array(n) : new Array<number>(n);
  const index = (c: Const, flat: number) => {
    let src = 0;
    let stride = 1;
    let rest = flat;
    const offset = shape.length - c.shape.length;
    const coords = shape.map(() => 0);
    for (let d = shape.length - 1; d >= 0; d--) {
      coords[d] = rest % shape[d];
      rest = Math.floor(rest / shape[d]);
    }
    for (let d = c.shape.length - 1; d >= 0; d--) {
      src += (c.shape[d] === 1 ? 0 : coords[d + offset]) * stride;
      stride *= c.shape[d];
    }
    return c.data[src];
  };
  for (let i = 0; i < n; i++) out[i] = f(index(a, i), index(b, i));
  return { kind: 'const', dtype: float ? 'float32' : a.dtype, shape, data: out };
}

const attrString = (a: TfAttr | undefined) => (a?.s === undefined ? undefined : Buffer.from(a.s, 'base64').toString('utf8'));
const attrInts = (a: TfAttr | undefined) => (a?.list?.i ?? []).map(Number);
const attrInt = (a: TfAttr | undefined, dflt: number) => (a?.i === undefined ? dflt : Number(a.i));
const attrStrings = (a: TfAttr | undefined) => (a?.list?.s ?? []).map((s) => Buffer.from(s, 'base64').toString('utf8'));
const attrBool = (a: TfAttr | undefined) => a?.b === true;
const attrFloat = (a: TfAttr | undefined, dflt: number) => (a?.f === undefined ? dflt : Number(a.f));

const UNARY: Record<string, string> = {
  Relu: 'Relu',
  Sigmoid: 'Sigmoid',
  Tanh: 'Tanh',
  Exp: 'Exp',
  Log: 'Log',
  Sqrt: 'Sqrt',
  Neg: 'Neg',
  Abs: 'Abs',
  Elu: 'Elu',
  Selu: 'Selu',
  Softplus: 'Softplus',
  Floor: 'Floor',
  Ceil: 'Ceil',
  Reciprocal: 'Reciprocal',
};

const BINARY: Record<string, { onnx: string; fold: (x: number, y: number) => number }> = {
  Add: { onnx: 'Add', fold: (x, y) => x + y },
  AddV2: { onnx: 'Add', fold: (x, y) => x + y },
  Sub: { onnx: 'Sub', fold: (x, y) => x - y },
  Mul: { onnx: 'Mul', fold: (x, y) => x * y },
  RealDiv: { onnx: 'Div', fold: (x, y) => x / y },
  Div: { onnx: 'Div', fold: (x, y) => x / y },
  FloorDiv: { onnx: '', fold: (x, y) => Math.floor(x / y) },
  Maximum: { onnx: 'Max', fold: (x, y) => Math.max(x, y) },
  Minimum: { onnx: 'Min', fold: (x, y) => Math.min(x, y) },
  Pow: { onnx: 'Pow', fold: (x, y) => x ** y },
};

const REDUCE: Record<string, string> = { Mean: 'ReduceMean', Sum: 'ReduceSum', Max: 'ReduceMax', Min: 'ReduceMin', Prod: 'ReduceProd' };

class Converter {
  private readonly b: OnnxBuilder;
  /** The value of each converted node; every op the converter handles has one output (`node:0`). */
  private readonly values = new Map<string, Value>();
  private readonly nodes: Map<string, TfNode>;
  /** Cache of layout changes and of constants turned into initializers. */
  private readonly transposed = new Map<string, string>();
  private readonly constNames = new Map<Const, Map<string, string>>();
  private node!: TfNode;
  private readonly outputKeys: Set<string>;

  constructor(private readonly model: TfGraphModel, private readonly options: ConvertOptions) {
    this.b = new OnnxBuilder({ opset: 17, name: 'tfjs', producerName: 'pairgen tfjs-to-onnx', producerVersion: CONVERTER_VERSION });
    this.nodes = new Map(model.nodes.map((n) => [n.name, n]));
    this.outputKeys = new Set(model.outputs.map((o) => o.key));
  }

  private where(): string {
    return `${this.model.path}: node ${this.node.name} (${this.node.op})`;
  }

  private fail(msg: string): never {
    throw new UserError(`${this.where()}: ${msg}`);
  }

  convert(): Uint8Array {
    const order = this.topologicalOrder();
    for (const n of order) {
      this.node = n;
      this.values.set(n.name, this.convertNode(n));
    }
    for (const out of this.model.outputs) {
      const v = this.valueOf(out.node, out.index);
      if (!v) throw new UserError(`${this.model.path}: output ${out.key} (node ${out.node}:${out.index}) was not produced`);
      this.emitOutput(out.key, v);
    }
    return this.b.toBytes();
  }

  /** Nodes the outputs depend on, each after its inputs (depth-first, iterative, file order for ties). */
  private topologicalOrder(): TfNode[] {
    const order: TfNode[] = [];
    const state = new Map<string, 'visiting' | 'done'>();
    const stack: { name: string; next: number }[] = this.model.outputs.map((o) => ({ name: o.node, next: 0 })).reverse();
    while (stack.length) {
      const top = stack[stack.length - 1];
      const node = this.nodes.get(top.name);
      if (!node) throw new UserError(`${this.model.path}: node ${top.name} is used as an input but not defined`);
      if (state.get(top.name) === 'done') {
        stack.pop();
        continue;
      }
      state.set(top.name, 'visiting');
      const inputs = (node.input ?? []).filter((i) => !i.startsWith('^'));
      if (top.next < inputs.length) {
        const [dep] = parseInputName(inputs[top.next++]);
        if (state.get(dep) === 'visiting') throw new UserError(`${this.model.path}: the graph has a cycle through node ${dep}`);
        if (state.get(dep) !== 'done') stack.push({ name: dep, next: 0 });
        continue;
      }
      state.set(top.name, 'done');
      order.push(node);
      stack.pop();
    }
    return order;
  }

  // ---- values -------------------------------------------------------------------------------

  private input(i: number): Value {
    const inputs = (this.node.input ?? []).filter((x) => !x.startsWith('^'));
    if (i >= inputs.length) this.fail(`expected at least ${i + 1} inputs, found ${inputs.length}`);
    const [name, index] = parseInputName(inputs[i]);
    const v = this.valueOf(name, index);
    if (!v) this.fail(`input ${inputs[i]} has no value`);
    return v;
  }

  private valueOf(node: string, index: number): Value | undefined {
    return index === 0 ? this.values.get(node) : undefined;
  }

  private inputCount(): number {
    return (this.node.input ?? []).filter((x) => !x.startsWith('^')).length;
  }

  private constInput(i: number, what: string): Const {
    const v = this.input(i);
    if (v.kind !== 'const') this.fail(`${what} must be a constant (computed at conversion time)`);
    return v;
  }

  private intsOf(c: Const, what: string): number[] {
    const out = Array.from(c.data as ArrayLike<number>);
    if (out.some((x) => !Number.isFinite(x))) this.fail(`${what} depends on an unknown (dynamic) dimension`);
    return out;
  }

  /** The ONNX name of a constant, as an initializer in the requested layout. */
  private constName(c: Const, layout: Layout = 'tf'): string {
    let byKey = this.constNames.get(c);
    if (!byKey) this.constNames.set(c, (byKey = new Map()));
    const cached = byKey.get(layout);
    if (cached) return cached;
    let shape = c.shape;
    let data = c.data;
    if (layout === 'nchw' && c.shape.length > 0) {
      shape = [...new Array(4 - c.shape.length).fill(1), ...c.shape];
      data = transposeData(data, shape, TO_NCHW);
      shape = TO_NCHW.map((p) => shape[p]);
    }
    const prefix = this.node.name.replace(/[^A-Za-z0-9_/.-]/g, '_') + '/const';
    let name: string;
    if (c.dtype === 'float32') name = this.b.constant(data instanceof Float32Array ? data : Float32Array.from(data), shape, prefix);
    else name = this.b.constant(Int32Array.from(this.intsOf({ ...c, data }, 'constant')), shape, prefix);
    byKey.set(layout, name);
    return name;
  }

  /** The ONNX name of a value in the given layout (4-D only for nchw). */
  private asLayout(v: Value, layout: Layout): string {
    if (v.kind === 'const') return this.constName(v, layout);
    if (v.layout === layout) return v.name;
    if (v.shape.length !== 4) this.fail(`cannot change the layout of a ${v.shape.length}-D tensor`);
    const key = `${v.name}>${layout}`;
    let name = this.transposed.get(key);
    if (!name) {
      name = this.b.op('Transpose', [v.name], { perm: layout === 'nchw' ? TO_NCHW : TO_NHWC });
      this.transposed.set(key, name);
    }
    return name;
  }

  private tensor(name: string, shape: number[], layout: Layout = 'tf', dtype: Tensor['dtype'] = 'float32'): Tensor {
    return { kind: 'tensor', name, shape, layout, dtype };
  }

  private op(opType: string, inputs: string[], attrs: Record<string, AttrValue> = {}): string {
    // Intermediate values are named after their TF node, never taking a graph output's name.
    const prefix = this.outputKeys.has(this.node.name) ? `${this.node.name}/value` : this.node.name;
    return this.b.op(opType, inputs, attrs, this.b.freshName(prefix));
  }

  private emitOutput(key: string, v: Value): void {
    if (v.kind === 'const') {
      this.b.node('Identity', [this.constName(v)], [key]);
      this.b.output(key, v.dtype === 'float32' ? 'float32' : 'int32', v.shape);
      return;
    }
    if (v.layout === 'nchw') this.b.node('Transpose', [v.name], [key], { perm: TO_NHWC });
    else this.b.node('Identity', [v.name], [key]);
    const dims: Dim[] = v.shape.map((d, i) => (d >= 0 ? d : i === 0 ? 'batch' : `${key}_dim${i}`));
    this.b.output(key, v.dtype, dims);
  }

  // ---- ops ----------------------------------------------------------------------------------

  private convertNode(n: TfNode): Value {
    const op = n.op;
    if (op === 'Const') return this.constNode(n);
    if (op === 'Placeholder') return this.placeholder(n);
    if (op === 'Identity' || op === 'StopGradient' || op === 'Snapshot') return this.input(0);
    if (op === 'Conv2D' || op === '_FusedConv2D' || op === 'DepthwiseConv2dNative' || op === 'FusedDepthwiseConv2dNative') return this.conv(n);
    if (op in UNARY) return this.unary(UNARY[op]);
    if (op in BINARY || op === 'BiasAdd') return this.binary(op === 'BiasAdd' ? 'Add' : op);
    if (op in REDUCE) return this.reduce(REDUCE[op]);
    switch (op) {
      case 'Relu6':
        return this.activation(this.input(0) as Tensor, 'Relu6');
      case 'LeakyRelu':
        return this.activation(this.input(0) as Tensor, 'LeakyRelu');
      case 'Prelu':
        return this.activation(this.input(0) as Tensor, 'Prelu', this.constInput(1, 'Prelu alpha'));
      case 'Rsqrt': {
        const x = this.tensorInput(0);
        return { ...x, name: this.op('Reciprocal', [this.op('Sqrt', [x.name])]) };
      }
      case 'Square': {
        const x = this.tensorInput(0);
        return { ...x, name: this.op('Mul', [x.name, x.name]) };
      }
      case 'AddN':
        return this.addN();
      case 'MaxPool':
      case 'AvgPool':
        return this.pool(n);
      case 'Pad':
      case 'PadV2':
      case 'MirrorPad':
        return this.pad(n);
      case 'MatMul':
      case '_FusedMatMul':
        return this.matmul(n);
      case 'Softmax':
      case 'LogSoftmax':
        return this.softmax(op);
      case 'Reshape':
        return this.reshape();
      case 'Squeeze':
        return this.squeeze(n);
      case 'ExpandDims':
        return this.expandDims();
      case 'StridedSlice':
        return this.stridedSlice(n);
      case 'ConcatV2':
        return this.concat();
      case 'Pack':
        return this.pack(n);
      case 'Shape':
        return this.shapeOf();
      case 'Cast':
        return this.cast(n);
      case 'Transpose':
        return this.transpose();
      case 'ResizeBilinear':
      case 'ResizeNearestNeighbor':
        return this.resize(n);
      case 'DepthToSpace':
        return this.depthToSpace(n);
      case 'Conv2DBackpropInput':
        return this.transposedConv(n);
      case 'FusedBatchNorm':
      case 'FusedBatchNormV3':
        return this.batchNorm(n);
      default:
        throw new UserError(`${this.where()}: unsupported op ${op}; the converter handles ${SUPPORTED_OPS.join(', ')}`);
    }
  }

  private tensorInput(i: number): Tensor {
    const v = this.input(i);
    if (v.kind === 'const') this.fail(`input ${i} is a constant; expected a computed tensor`);
    return v;
  }

  private constNode(n: TfNode): Const {
    const w = this.model.weights.get(n.name);
    if (!w) this.fail('constant has no weight in the weights manifest');
    return { kind: 'const', dtype: w.dtype, shape: w.shape, data: w.data instanceof Float32Array ? w.data : Array.from(w.data) };
  }

  private placeholder(n: TfNode): Tensor {
    const declared = (n.attr?.shape?.shape?.dim ?? []).map((d) => Number(d.size));
    const shape = this.options.inputShape ?? declared;
    if (shape.length === 0) this.fail('the input has no declared shape; pass inputShape');
    if (declared.length && (declared.length !== shape.length || declared.some((d, i) => d >= 0 && d !== shape[i]))) {
      this.fail(`inputShape [${shape}] does not fit the declared shape [${declared}]`);
    }
    if (shape.slice(1).some((d) => d < 0)) this.fail(`only the batch dimension may be dynamic; input shape is [${shape}]`);
    const dtype = n.attr?.dtype?.type;
    if (dtype !== undefined && dtype !== 'DT_FLOAT') this.fail(`input dtype ${dtype} is not supported; expected DT_FLOAT`);
    this.b.input(n.name, 'float32', shape.map((d) => (d >= 0 ? d : 'batch')));
    return this.tensor(n.name, shape);
  }

  /** TF's SAME / VALID / EXPLICIT padding as ONNX pads [top, left, bottom, right]. */
  private pads2d(n: TfNode, inH: number, inW: number, kH: number, kW: number, strides: number[], dil: number[]): number[] {
    const padding = attrString(n.attr?.padding);
    if (padding === 'VALID') return [0, 0, 0, 0];
    if (padding === 'EXPLICIT') {
      const p = attrInts(n.attr?.explicit_paddings);
      return [p[2], p[4], p[3], p[5]];
    }
    if (padding !== 'SAME') this.fail(`padding ${padding} is not supported`);
    // TF's SAME: output = ceil(in / stride); the odd pixel of padding goes at the end.
    const same = (size: number, k: number, s: number, d: number) => {
      const total = Math.max((Math.ceil(size / s) - 1) * s + (k - 1) * d + 1 - size, 0);
      return [Math.floor(total / 2), total - Math.floor(total / 2)];
    };
    const [t, bottom] = same(inH, kH, strides[0], dil[0]);
    const [l, r] = same(inW, kW, strides[1], dil[1]);
    return [t, l, bottom, r];
  }

  private checkNhwc(n: TfNode): void {
    const fmt = attrString(n.attr?.data_format);
    if (fmt !== undefined && fmt !== 'NHWC') this.fail(`data_format ${fmt} is not supported; expected NHWC`);
  }

  private conv(n: TfNode): Tensor {
    this.checkNhwc(n);
    const x = this.tensorInput(0);
    const filter = this.constInput(1, 'the filter');
    const depthwise = n.op.includes('Depthwise');
    const [kH, kW, inC, mult] = filter.shape;
    const strides = attrInts(n.attr?.strides).slice(1, 3);
    const dil = n.attr?.dilations ? attrInts(n.attr.dilations).slice(1, 3) : [1, 1];
    const [N, H, W] = x.shape;
    const pads = this.pads2d(n, H, W, kH, kW, strides, dil);
    let weight: Float32Array;
    let wShape: number[];
    if (depthwise) {
      // TF [kh, kw, in, mult] → ONNX grouped [in*mult, 1, kh, kw]; output channel = in * mult + m in both.
      weight = transposeData(filter.data as Float32Array, filter.shape, [2, 3, 0, 1]);
      wShape = [inC * mult, 1, kH, kW];
    } else {
      weight = transposeData(filter.data as Float32Array, filter.shape, [3, 2, 0, 1]);
      wShape = [mult, inC, kH, kW];
    }
    const outC = wShape[0];
    const inputs = [this.asLayout(x, 'nchw'), this.b.constant(weight, wShape, `${n.name}/weight`)];
    const fused = this.fusedOps(n);
    if (fused.bias) inputs.push(this.constName(this.constInput(2, 'the bias')));
    const shape = [N, windowOut(H, kH, strides[0], dil[0], pads[0], pads[2]), windowOut(W, kW, strides[1], dil[1], pads[1], pads[3]), outC];
    const name = this.op('Conv', inputs, { kernel_shape: [kH, kW], strides, dilations: dil, pads, group: depthwise ? inC : 1 });
    return this.fusedActivations(this.tensor(name, shape, 'nchw'), fused);
  }

  /**
   * TF's transposed convolution (the gradient of a Conv2D whose input has `input_sizes`): inputs are that
   * size, the filter [kh, kw, out channels, in channels] and the values. ONNX's ConvTranspose takes the
   * forward convolution's pads and adds `output_padding` cells at the end for what the stride leaves over.
   */
  private transposedConv(n: TfNode): Tensor {
    this.checkNhwc(n);
    const [, outH, outW] = this.intsOf(this.constInput(0, 'the output size'), 'the output size');
    const filter = this.constInput(1, 'the filter');
    const x = this.tensorInput(2);
    const [kH, kW, outC, inC] = filter.shape;
    const strides = attrInts(n.attr?.strides).slice(1, 3);
    const dil = n.attr?.dilations ? attrInts(n.attr.dilations).slice(1, 3) : [1, 1];
    const pads = this.pads2d(n, outH, outW, kH, kW, strides, dil);
    const [N, H, W] = x.shape;
    const span = (i: number, k: number, s: number, d: number, p0: number, p1: number) => s * (i - 1) + (k - 1) * d + 1 - p0 - p1;
    const outputPadding = [outH - span(H, kH, strides[0], dil[0], pads[0], pads[2]), outW - span(W, kW, strides[1], dil[1], pads[1], pads[3])];
    if (outputPadding.some((p, i) => p < 0 || p >= strides[i])) this.fail(`output size ${outH}×${outW} does not fit an input of ${H}×${W}`);
    const weight = transposeData(filter.data as Float32Array, filter.shape, [3, 2, 0, 1]);
    const inputs = [this.asLayout(x, 'nchw'), this.b.constant(weight, [inC, outC, kH, kW], `${n.name}/weight`)];
    const attrs = { kernel_shape: [kH, kW], strides, dilations: dil, pads, output_padding: outputPadding };
    return this.tensor(this.op('ConvTranspose', inputs, attrs), [N, outH, outW, outC], 'nchw');
  }

  /** A fused node's `fused_ops`: BiasAdd first (bias = input 2) when anything is fused, then activations. */
  private fusedOps(n: TfNode): { bias: boolean; activations: string[] } {
    const fused = attrStrings(n.attr?.fused_ops);
    if (fused.length && fused[0] !== 'BiasAdd') this.fail(`fused ops [${fused.join(', ')}] are not supported; expected BiasAdd first`);
    return { bias: fused.length > 0, activations: fused.slice(1) };
  }

  /** The fused activations applied in order; a Prelu's alpha is the input after the bias. */
  private fusedActivations(y: Tensor, fused: { bias: boolean; activations: string[] }): Tensor {
    let next = fused.bias ? 3 : 2;
    for (const act of fused.activations) y = this.activation(y, act, act === 'Prelu' ? this.constInput(next++, 'the Prelu alpha') : undefined);
    return y;
  }

  private activation(x: Tensor, act: string, alpha?: Const): Tensor {
    if (x.kind !== 'tensor') this.fail(`${act} of a constant is not supported`);
    let name: string;
    if (act === 'Relu') name = this.op('Relu', [x.name]);
    else if (act === 'Relu6') name = this.op('Clip', [x.name, this.b.constant(new Float32Array([0]), [], 'zero'), this.b.constant(new Float32Array([6]), [], 'six')]);
    else if (act === 'Elu') name = this.op('Elu', [x.name]);
    else if (act === 'Sigmoid') name = this.op('Sigmoid', [x.name]);
    else if (act === 'Tanh') name = this.op('Tanh', [x.name]);
    else if (act === 'LeakyRelu') {
      // The standalone op calls it `alpha`, the fused convolutions `leakyrelu_alpha`.
      const alphaAttr = this.node.op === 'LeakyRelu' ? this.node.attr?.alpha : this.node.attr?.leakyrelu_alpha;
      name = this.op('LeakyRelu', [x.name], { alpha: float(attrFloat(alphaAttr, 0.2)) });
    }
    else if (act === 'Prelu') {
      if (!alpha) this.fail('Prelu needs an alpha');
      name = this.op('PRelu', [x.name, this.constName(alpha, x.layout)]);
    } else this.fail(`fused activation ${act} is not supported`);
    return { ...x, name };
  }

  private unary(onnxOp: string): Value {
    const x = this.tensorInput(0);
    return { ...x, name: this.op(onnxOp, [x.name]) };
  }

  private binary(tfOp: string): Value {
    const a = this.input(0);
    const c = this.input(1);
    const spec = BINARY[tfOp];
    if (a.kind === 'const' && c.kind === 'const') return foldBinary(a, c, spec.fold, this.where());
    if (!spec.onnx) this.fail(`${tfOp} on computed tensors is not supported`);
    const shape = broadcastShape(a.shape, c.shape, this.where());
    const dtype = a.kind === 'tensor' ? a.dtype : (c as Tensor).dtype;
    // Stay in NCHW when every computed input is a 4-D NCHW tensor and constants can be re-laid out.
    const nchw = [a, c].some((v) => v.kind === 'tensor' && v.layout === 'nchw') && [a, c].every((v) => (v.kind === 'const' ? v.shape.length <= 4 : v.shape.length === 4));
    const layout: Layout = nchw && shape.length === 4 ? 'nchw' : 'tf';
    return this.tensor(this.op(spec.onnx, [this.asLayout(a, layout), this.asLayout(c, layout)]), shape, layout, dtype);
  }

  private addN(): Value {
    const inputs = Array.from({ length: this.inputCount() }, (_, i) => this.input(i));
    const layout: Layout = inputs.every((v) => v.kind === 'tensor' && v.layout === 'nchw') ? 'nchw' : 'tf';
    const shape = inputs.map((v) => v.shape).reduce((s, t) => broadcastShape(s, t, this.where()));
    return this.tensor(this.op('Sum', inputs.map((v) => this.asLayout(v, layout))), shape, layout);
  }

  private pool(n: TfNode): Tensor {
    this.checkNhwc(n);
    const x = this.tensorInput(0);
    const [kH, kW] = attrInts(n.attr?.ksize).slice(1, 3);
    const strides = attrInts(n.attr?.strides).slice(1, 3);
    const [N, H, W, C] = x.shape;
    const pads = this.pads2d(n, H, W, kH, kW, strides, [1, 1]);
    // ONNX's MaxPool ignores padded cells and AveragePool (count_include_pad=0) leaves them out of the
    // mean, as TF's SAME pooling does.
    const name = this.op(n.op === 'MaxPool' ? 'MaxPool' : 'AveragePool', [this.asLayout(x, 'nchw')], { kernel_shape: [kH, kW], strides, pads });
    return this.tensor(name, [N, windowOut(H, kH, strides[0], 1, pads[0], pads[2]), windowOut(W, kW, strides[1], 1, pads[1], pads[3]), C], 'nchw');
  }

  private pad(n: TfNode): Tensor {
    const x = this.tensorInput(0);
    const p = this.intsOf(this.constInput(1, 'paddings'), 'paddings');
    const rank = x.shape.length;
    if (p.length !== rank * 2) this.fail(`paddings hold ${p.length} values for a ${rank}-D input`);
    let mode = 'constant';
    if (n.op === 'MirrorPad') {
      const m = attrString(n.attr?.mode);
      if (m !== 'REFLECT') this.fail(`MirrorPad mode ${m} is not supported; ONNX has REFLECT only`);
      mode = 'reflect';
    }
    const layout = x.layout;
    const axisOrder = layout === 'nchw' ? TO_NCHW : x.shape.map((_, i) => i);
    const begins = axisOrder.map((a) => p[a * 2]);
    const ends = axisOrder.map((a) => p[a * 2 + 1]);
    const inputs = [x.name, this.b.constant(int64([...begins, ...ends]), [rank * 2], 'pads')];
    if (n.op === 'PadV2') inputs.push(this.constName(this.constInput(2, 'the pad value')));
    const shape = x.shape.map((d, i) => (d < 0 ? d : d + p[i * 2] + p[i * 2 + 1]));
    return this.tensor(this.op('Pad', inputs, { mode }), shape, layout);
  }

  private matmul(n: TfNode): Tensor {
    const a = this.input(0);
    const c = this.input(1);
    if (a.shape.length !== 2 || c.shape.length !== 2) this.fail('only 2-D MatMul is supported');
    const ta = attrBool(n.attr?.transpose_a);
    const tb = attrBool(n.attr?.transpose_b);
    let left = this.asLayout(a, 'tf');
    let right = this.asLayout(c, 'tf');
    if (ta) left = this.op('Transpose', [left], { perm: [1, 0] });
    if (tb) right = this.op('Transpose', [right], { perm: [1, 0] });
    const rows = ta ? a.shape[1] : a.shape[0];
    const cols = tb ? c.shape[0] : c.shape[1];
    let y = this.tensor(this.op('MatMul', [left, right]), [rows, cols]);
    const fused = this.fusedOps(n);
    if (fused.bias) y = { ...y, name: this.op('Add', [y.name, this.asLayout(this.input(2), 'tf')]) };
    return this.fusedActivations(y, fused);
  }

  private reduce(onnxOp: string): Tensor {
    const x = this.tensorInput(0);
    const rank = x.shape.length;
    const axes = this.intsOf(this.constInput(1, 'reduction axes'), 'reduction axes').map((a) => (a < 0 ? a + rank : a));
    const keep = attrBool(this.node.attr?.keep_dims);
    const kept = x.shape.map((_, i) => i).filter((i) => !axes.includes(i));
    // Reducing in NCHW is fine when the surviving axes come out in TF's order.
    const nchwOk = x.layout === 'nchw' && (keep || kept.map((a) => NCHW_POS[a]).every((p, i, ps) => i === 0 || ps[i - 1] < p));
    const layout: Layout = nchwOk ? 'nchw' : 'tf';
    const onnxAxes = layout === 'nchw' ? axes.map((a) => NCHW_POS[a]).sort() : [...axes].sort();
    const name =
      onnxOp === 'ReduceSum'
        ? this.op(onnxOp, [this.asLayout(x, layout), this.b.constant(int64(onnxAxes), [onnxAxes.length], 'axes')], { keepdims: keep ? 1 : 0 })
        : this.op(onnxOp, [this.asLayout(x, layout)], { axes: onnxAxes, keepdims: keep ? 1 : 0 });
    const shape = keep ? x.shape.map((d, i) => (axes.includes(i) ? 1 : d)) : kept.map((i) => x.shape[i]);
    return this.tensor(name, shape, keep && layout === 'nchw' ? 'nchw' : 'tf');
  }

  private softmax(op: string): Tensor {
    const x = this.tensorInput(0);
    const axis = x.layout === 'nchw' ? 1 : -1;
    return { ...x, name: this.op(op === 'Softmax' ? 'Softmax' : 'LogSoftmax', [x.name], { axis }) };
  }

  /** A folded TF shape as an ONNX Reshape target: unknown entries copy the input dim (0) or are inferred (-1). */
  private reshapeTarget(target: number[], input: number[]): number[] {
    const out = target.map((d, i) => (Number.isNaN(d) && input[i] === -1 ? 0 : d));
    const unknown = out.filter((d) => Number.isNaN(d)).length;
    if (unknown > 1 || (unknown === 1 && out.includes(-1))) this.fail(`the target shape [${target}] has more than one unknown dimension`);
    return out.map((d) => (Number.isNaN(d) ? -1 : d));
  }

  private inferShape(target: number[], input: number[]): number[] {
    const known = input.every((d) => d >= 0);
    const shape = target.map((d, i) => (d === 0 ? input[i] : d));
    if (!known) return shape.map((d) => (d < 0 ? -1 : d));
    const rest = size(shape.filter((d) => d >= 0));
    return shape.map((d) => (d < 0 ? size(input) / rest : d));
  }

  private reshape(): Value {
    const x = this.input(0);
    const target = Array.from(this.constInput(1, 'the shape').data as number[]);
    if (x.kind === 'const') {
      return { ...x, shape: this.inferShape(this.intsOf(this.constInput(1, 'the shape'), 'the shape'), x.shape) };
    }
    const onnxTarget = this.reshapeTarget(target, x.shape);
    const name = this.op('Reshape', [this.asLayout(x, 'tf'), this.b.constant(int64(onnxTarget), [onnxTarget.length], 'shape')]);
    return this.tensor(name, this.inferShape(onnxTarget, x.shape), 'tf', x.dtype);
  }

  private squeeze(n: TfNode): Value {
    const x = this.input(0);
    const rank = x.shape.length;
    let axes = attrInts(n.attr?.squeeze_dims).map((a) => (a < 0 ? a + rank : a));
    if (axes.length === 0) axes = x.shape.map((d, i) => (d === 1 ? i : -1)).filter((i) => i >= 0);
    const shape = x.shape.filter((_, i) => !axes.includes(i));
    if (x.kind === 'const') return { ...x, shape };
    const name = this.op('Squeeze', [this.asLayout(x, 'tf'), this.b.constant(int64(axes), [axes.length], 'axes')]);
    return this.tensor(name, shape, 'tf', x.dtype);
  }

  private expandDims(): Value {
    const x = this.input(0);
    let axis = this.intsOf(this.constInput(1, 'the axis'), 'the axis')[0];
    if (axis < 0) axis += x.shape.length + 1;
    const shape = [...x.shape.slice(0, axis), 1, ...x.shape.slice(axis)];
    if (x.kind === 'const') return { ...x, shape };
    const name = this.op('Unsqueeze', [this.asLayout(x, 'tf'), this.b.constant(int64([axis]), [1], 'axes')]);
    return this.tensor(name, shape, 'tf', x.dtype);
  }

  private stridedSlice(n: TfNode): Value {
    const x = this.input(0);
    const begin = this.intsOf(this.constInput(1, 'begin'), 'begin');
    const end = this.intsOf(this.constInput(2, 'end'), 'end');
    const strides = this.intsOf(this.constInput(3, 'strides'), 'strides');
    const mask = (k: string) => attrInt(n.attr?.[k], 0);
    if (mask('ellipsis_mask') || mask('new_axis_mask')) this.fail('ellipsis_mask and new_axis_mask are not supported');
    const rank = x.shape.length;
    const starts: number[] = [];
    const ends: number[] = [];
    const steps: number[] = [];
    const shape: number[] = [];
    const shrink: number[] = [];
    for (let d = 0; d < rank; d++) {
      const dim = x.shape[d];
      if (d >= begin.length) {
        starts.push(0), ends.push(dim < 0 ? 2 ** 31 - 1 : dim), steps.push(1), shape.push(dim);
        continue;
      }
      const s = strides[d];
      const clamp = (v: number, lo: number, hi: number) => Math.min(Math.max(v, lo), hi);
      const norm = (v: number) => (v < 0 && dim >= 0 ? v + dim : v);
      let b = mask('begin_mask') & (1 << d) ? (s > 0 ? 0 : dim - 1) : norm(begin[d]);
      let e = mask('end_mask') & (1 << d) ? (s > 0 ? dim : -1) : norm(end[d]);
      if (mask('shrink_axis_mask') & (1 << d)) {
        e = b + 1;
        shrink.push(d);
      }
      if (dim >= 0) {
        b = s > 0 ? clamp(b, 0, dim) : clamp(b, -1, dim - 1);
        e = s > 0 ? clamp(e, 0, dim) : clamp(e, -1, dim - 1);
      } else if (b < 0 || e < 0) this.fail('negative bounds on an unknown dimension');
      starts.push(b), ends.push(e === -1 && s < 0 ? -(2 ** 31) : e), steps.push(s);
      shape.push(dim < 0 ? -1 : Math.max(0, Math.ceil((e - b) / s)));
    }
    const outShape = shape.filter((_, d) => !shrink.includes(d));
    if (x.kind === 'const') {
      const src = Array.from(x.data as ArrayLike<number>);
      const out: number[] = [];
      const strideOf = x.shape.map((_, i) => size(x.shape.slice(i + 1)));
      const walk = (d: number, offset: number) => {
        if (d === rank) return void out.push(src[offset]);
        for (let k = 0; k < shape[d]; k++) walk(d + 1, offset + (starts[d] + k * steps[d]) * strideOf[d]);
      };
      walk(0, 0);
      return { kind: 'const', dtype: x.dtype, shape: outShape, data: x.dtype === 'float32' ? Float32Array.from(out) : out };
    }
    const i64 = (v: number[]) => this.b.constant(int64(v), [v.length], 'slice');
    let name = this.op('Slice', [this.asLayout(x, 'tf'), i64(starts), i64(ends), i64(x.shape.map((_, d) => d)), i64(steps)]);
    if (shrink.length) name = this.op('Squeeze', [name, i64(shrink)]);
    return this.tensor(name, outShape, 'tf', x.dtype);
  }

  private concat(): Value {
    const count = this.inputCount() - 1;
    const inputs = Array.from({ length: count }, (_, i) => this.input(i));
    const rank = inputs[0].shape.length;
    let axis = this.intsOf(this.constInput(count, 'the axis'), 'the axis')[0];
    if (axis < 0) axis += rank;
    const shape = [...inputs[0].shape];
    shape[axis] = inputs.some((v) => v.shape[axis] < 0) ? -1 : inputs.reduce((s, v) => s + v.shape[axis], 0);
    if (inputs.every((v) => v.kind === 'const')) {
      const consts = inputs as Const[];
      const outer = size(shape.slice(0, axis));
      const out: number[] = [];
      for (let o = 0; o < outer; o++) {
        for (const c of consts) {
          const chunk = size(c.shape.slice(axis));
          for (let k = 0; k < chunk; k++) out.push(c.data[o * chunk + k]);
        }
      }
      const dtype = consts[0].dtype;
      return { kind: 'const', dtype, shape, data: dtype === 'float32' ? Float32Array.from(out) : out };
    }
    const layout: Layout = inputs.every((v) => v.kind === 'tensor' && v.layout === 'nchw') ? 'nchw' : 'tf';
    const name = this.op('Concat', inputs.map((v) => this.asLayout(v, layout)), { axis: layout === 'nchw' ? NCHW_POS[axis] : axis });
    const dtype = inputs.find((v): v is Tensor => v.kind === 'tensor')!.dtype;
    return this.tensor(name, shape, layout, dtype);
  }

  private pack(n: TfNode): Value {
    const inputs = Array.from({ length: this.inputCount() }, (_, i) => this.input(i));
    const axis = attrInt(n.attr?.axis, 0);
    if (inputs.every((v) => v.kind === 'const') && axis === 0) {
      const consts = inputs as Const[];
      const data = consts.flatMap((c) => Array.from(c.data as ArrayLike<number>));
      const dtype = consts[0].dtype;
      return { kind: 'const', dtype, shape: [consts.length, ...consts[0].shape], data: dtype === 'float32' ? Float32Array.from(data) : data };
    }
    const rank = inputs[0].shape.length;
    const a = axis < 0 ? axis + rank + 1 : axis;
    const axes = this.b.constant(int64([a]), [1], 'axes');
    const parts = inputs.map((v) => this.op('Unsqueeze', [this.asLayout(v, 'tf'), axes]));
    const shape = [...inputs[0].shape.slice(0, a), inputs.length, ...inputs[0].shape.slice(a)];
    return this.tensor(this.op('Concat', parts, { axis: a }), shape, 'tf');
  }

  private shapeOf(): Const {
    const x = this.input(0);
    return { kind: 'const', dtype: 'int32', shape: [x.shape.length], data: x.shape.map((d) => (d < 0 ? NaN : d)) };
  }

  private cast(n: TfNode): Value {
    const x = this.input(0);
    const to = n.attr?.DstT?.type;
    if (to !== 'DT_FLOAT' && to !== 'DT_INT32') this.fail(`Cast to ${to} is not supported`);
    if (x.kind === 'const') {
      const vals = Array.from(x.data as ArrayLike<number>);
      return to === 'DT_FLOAT'
        ? { kind: 'const', dtype: 'float32', shape: x.shape, data: Float32Array.from(vals) }
        : { kind: 'const', dtype: 'int32', shape: x.shape, data: vals.map(Math.trunc) };
    }
    return { ...x, dtype: to === 'DT_FLOAT' ? 'float32' : 'int32', name: this.op('Cast', [x.name], { to: to === 'DT_FLOAT' ? 1 : 6 }) };
  }

  private transpose(): Value {
    const x = this.input(0);
    const perm = this.intsOf(this.constInput(1, 'the permutation'), 'the permutation');
    const shape = perm.map((p) => x.shape[p]);
    if (x.kind === 'const') return { ...x, shape, data: transposeData(x.data, x.shape, perm) };
    return this.tensor(this.op('Transpose', [this.asLayout(x, 'tf')], { perm }), shape, 'tf', x.dtype);
  }

  private resize(n: TfNode): Tensor {
    const x = this.tensorInput(0);
    const [outH, outW] = this.intsOf(this.constInput(1, 'the output size'), 'the output size');
    const [N, H, W, C] = x.shape;
    const alignCorners = attrBool(n.attr?.align_corners);
    const halfPixel = attrBool(n.attr?.half_pixel_centers);
    const bilinear = n.op === 'ResizeBilinear';
    const attrs: Record<string, string> = {
      mode: bilinear ? 'linear' : 'nearest',
      coordinate_transformation_mode: alignCorners ? 'align_corners' : halfPixel ? (bilinear ? 'half_pixel' : 'tf_half_pixel_for_nn') : 'asymmetric',
    };
    if (!bilinear) attrs.nearest_mode = alignCorners ? 'round_prefer_ceil' : 'floor';
    const inputs = [this.asLayout(x, 'nchw'), ''];
    if (N >= 0) inputs.push('', this.b.constant(int64([N, C, outH, outW]), [4], 'sizes'));
    else inputs.push(this.b.constant(new Float32Array([1, 1, outH / H, outW / W]), [4], 'scales'));
    return this.tensor(this.op('Resize', inputs, attrs), [N, outH, outW, C], 'nchw');
  }

  private depthToSpace(n: TfNode): Tensor {
    this.checkNhwc(n);
    const x = this.tensorInput(0);
    const bs = attrInt(n.attr?.block_size, 0);
    const [N, H, W, C] = x.shape;
    // TF's NHWC channel order (block row, block column, channel) is ONNX's DCR mode.
    return this.tensor(this.op('DepthToSpace', [this.asLayout(x, 'nchw')], { blocksize: bs, mode: 'DCR' }), [N, H * bs, W * bs, C / (bs * bs)], 'nchw');
  }

  private batchNorm(n: TfNode): Tensor {
    const x = this.tensorInput(0);
    const [scale, offset, mean, variance] = [1, 2, 3, 4].map((i) => this.constInput(i, 'batch-norm parameters').data as Float32Array);
    const eps = attrFloat(n.attr?.epsilon, 1e-3);
    const C = scale.length;
    const mul = new Float32Array(C);
    const add = new Float32Array(C);
    for (let c = 0; c < C; c++) {
      mul[c] = scale[c] / Math.sqrt(variance[c] + eps);
      add[c] = offset[c] - mean[c] * mul[c];
    }
    const asConst = (data: Float32Array): Const => ({ kind: 'const', dtype: 'float32', shape: [C], data });
    const y = this.op('Mul', [x.name, this.constName(asConst(mul), x.layout)]);
    return { ...x, name: this.op('Add', [y, this.constName(asConst(add), x.layout)]) };
  }
}

export const SUPPORTED_OPS = [
  'Const', 'Placeholder', 'Identity', 'StopGradient', 'Snapshot', 'Conv2D', '_FusedConv2D', 'DepthwiseConv2dNative',
  'FusedDepthwiseConv2dNative', ...Object.keys(UNARY), 'Relu6', 'LeakyRelu', 'Prelu', 'Rsqrt', 'Square', ...Object.keys(BINARY),
  'BiasAdd', 'AddN', 'MaxPool', 'AvgPool', 'Pad', 'PadV2', 'MirrorPad', 'MatMul', '_FusedMatMul', ...Object.keys(REDUCE),
  'Softmax', 'LogSoftmax', 'Reshape', 'Squeeze', 'ExpandDims', 'StridedSlice', 'ConcatV2', 'Pack', 'Shape', 'Cast',
  'Transpose', 'ResizeBilinear', 'ResizeNearestNeighbor', 'DepthToSpace', 'FusedBatchNorm', 'FusedBatchNormV3', 'Conv2DBackpropInput',
];

/**
 * Convert a TF.js model to ONNX bytes: a graph model or a (functional) layers model, as model.json
 * beside its weight shards or as an nsfwjs-style model.min.js bundle.
 */
export async function convertTfjsGraph(modelPath: string, options: ConvertOptions = {}): Promise<Uint8Array> {
  const model = await readTfjsModel(modelPath);
  return new Converter('nodes' in model ? model : lowerLayersModel(model), options).convert();
}
