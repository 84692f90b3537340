import onnxProto from 'onnx-proto';

/**
 * A small typed API over `onnx-proto` for building ONNX models in code: graph inputs and outputs
 * (symbolic dims allowed), initializers from typed arrays, nodes with attributes, and `toBytes()`.
 *
 *   const b = new OnnxBuilder({ opset: 17 });
 *   const x = b.input('x', 'float32', ['batch', 3]);
 *   const w = b.initializer('w', new Float32Array([...]), [3, 2]);
 *   const y = b.op('MatMul', [x, w]);
 *   b.output(b.op('Relu', [y], {}, 'y'), 'float32', ['batch', 2]);
 *   const bytes = b.toBytes();   // pass to ort.InferenceSession.create(bytes)
 *
 * Attributes: an integer number (or array of integers) becomes INT(S), a non-integer number FLOAT(S), a
 * string STRING; wrap with `float()` / `floats()` to force floats (e.g. `alpha: float(1)`), `ints()`
 * for an empty int list. Serialisation is deterministic: the same calls give the same bytes.
 */
const { onnx } = onnxProto;

export type DType = 'float32' | 'float16' | 'float64' | 'int8' | 'int16' | 'int32' | 'int64' | 'uint8' | 'uint16' | 'bool';
/** A tensor dimension: a size, or a name for a symbolic (dynamic) size. */
export type Dim = number | string;
export type TensorData = Float32Array | Float64Array | Int8Array | Int16Array | Int32Array | BigInt64Array | Uint8Array | Uint16Array;

const DATA_TYPE: Record<DType, number> = {
  float32: onnx.TensorProto.DataType.FLOAT,
  float16: onnx.TensorProto.DataType.FLOAT16,
  float64: onnx.TensorProto.DataType.DOUBLE,
  int8: onnx.TensorProto.DataType.INT8,
  int16: onnx.TensorProto.DataType.INT16,
  int32: onnx.TensorProto.DataType.INT32,
  int64: onnx.TensorProto.DataType.INT64,
  uint8: onnx.TensorProto.DataType.UINT8,
  uint16: onnx.TensorProto.DataType.UINT16,
  bool: onnx.TensorProto.DataType.BOOL,
};

/** The dtype a typed array stores by default (Uint16Array → float16 bit patterns must be said explicitly). */
function defaultDType(data: TensorData): DType {
  if (data instanceof Float32Array) return 'float32';
  if (data instanceof Float64Array) return 'float64';
  if (data instanceof Int8Array) return 'int8';
  if (data instanceof Int16Array) return 'int16';
  if (data instanceof Int32Array) return 'int32';
  if (data instanceof BigInt64Array) return 'int64';
  if (data instanceof Uint8Array) return 'uint8';
  return 'uint16';
}

class FloatAttr {
  constructor(readonly value: number | number[]) {}
}
class IntsAttr {
  constructor(readonly value: number[]) {}
}
class TensorAttr {
  constructor(readonly data: TensorData, readonly dims: number[], readonly dtype?: DType) {}
}

/** Force a FLOAT attribute (a plain integer number would become INT). */
export function float(value: number): FloatAttr {
  return new FloatAttr(value);
}
/** Force a FLOATS attribute. */
export function floats(values: number[]): FloatAttr {
  return new FloatAttr(values);
}
/** An INTS attribute (needed only for an empty list). */
export function ints(values: number[]): IntsAttr {
  return new IntsAttr(values);
}
/** Int64 tensor data from plain numbers (shapes, axes, pads). */
export function int64(values: readonly number[]): BigInt64Array {
  return BigInt64Array.from(values, (v) => BigInt(v));
}
/** A TENSOR attribute (e.g. for `Constant` nodes' `value`). */
export function tensorAttr(data: TensorData, dims: number[], dtype?: DType): TensorAttr {
  return new TensorAttr(data, dims, dtype);
}

export type AttrValue = number | number[] | string | string[] | FloatAttr | IntsAttr | TensorAttr;

export interface BuilderOptions {
  /** Default opset of the ai.onnx domain (17). */
  opset?: number;
  /** Graph name (stored in the model). */
  name?: string;
  producerName?: string;
  producerVersion?: string;
  /** Free-form key/value pairs stored in the model's metadata_props. */
  metadata?: Record<string, string>;
}

function tensorProto(name: string, data: TensorData, dims: number[], dtype?: DType): onnxProto.onnx.ITensorProto {
  const count = dims.reduce((a, b) => a * b, 1);
  if (count !== data.length) throw new Error(`tensor ${name}: ${data.length} values do not fill dims [${dims.join(', ')}]`);
  const type = dtype ?? defaultDType(data);
  // raw_data is little-endian, which is what typed arrays hold on every platform Node supports.
  const raw = new Uint8Array(data.buffer, data.byteOffset, data.byteLength).slice();
  return { name, dims, dataType: DATA_TYPE[type], rawData: raw };
}

function attribute(name: string, v: AttrValue): onnxProto.onnx.IAttributeProto {
  const T = onnx.AttributeProto.AttributeType;
  if (v instanceof FloatAttr) {
    return Array.isArray(v.value) ? { name, type: T.FLOATS, floats: v.value } : { name, type: T.FLOAT, f: v.value };
  }
  if (v instanceof IntsAttr) return { name, type: T.INTS, ints: v.value };
  if (v instanceof TensorAttr) return { name, type: T.TENSOR, t: tensorProto('', v.data, v.dims, v.dtype) };
  if (typeof v === 'string') return { name, type: T.STRING, s: new TextEncoder().encode(v) };
  if (typeof v === 'number') return Number.isInteger(v) ? { name, type: T.INT, i: v } : { name, type: T.FLOAT, f: v };
  if (v.length === 0) throw new Error(`attribute ${name}: an empty list is ambiguous; use ints([]) or floats([])`);
  if (typeof v[0] === 'string') return { name, type: T.STRINGS, strings: (v as string[]).map((s) => new TextEncoder().encode(s)) };
  const nums = v as number[];
  return nums.every(Number.isInteger) ? { name, type: T.INTS, ints: nums } : { name, type: T.FLOATS, floats: nums };
}

function valueInfo(name: string, dtype: DType, dims: Dim[] | null): onnxProto.onnx.IValueInfoProto {
  const tensorType: onnxProto.onnx.TypeProto.ITensor = { elemType: DATA_TYPE[dtype] };
  if (dims) tensorType.shape = { dim: dims.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })) };
  return { name, type: { tensorType } };
}

export class OnnxBuilder {
  private readonly inputs: onnxProto.onnx.IValueInfoProto[] = [];
  private readonly outputs: onnxProto.onnx.IValueInfoProto[] = [];
  private readonly initializers: onnxProto.onnx.ITensorProto[] = [];
  private readonly nodes: onnxProto.onnx.INodeProto[] = [];
  private readonly names = new Set<string>();
  private readonly opsets = new Map<string, number>();
  private counter = 0;

  constructor(private readonly options: BuilderOptions = {}) {
    this.opsets.set('', options.opset ?? 17);
  }

  /** A value name starting with `prefix` that is not used yet (not reserved: pass it to op/node). */
  freshName(prefix = 'v'): string {
    let name = prefix;
    while (this.names.has(name)) name = `${prefix}_${++this.counter}`;
    return name;
  }

  /** A fresh value name starting with `prefix`, reserved for the caller. */
  uniqueName(prefix = 'v'): string {
    return this.claim(this.freshName(prefix));
  }

  private claim(name: string): string {
    if (this.names.has(name)) throw new Error(`ONNX value name used twice: ${name}`);
    this.names.add(name);
    return name;
  }

  /** Declare a graph input; returns its name. */
  input(name: string, dtype: DType, dims: Dim[]): string {
    this.inputs.push(valueInfo(this.claim(name), dtype, dims));
    return name;
  }

  /** Declare an existing value as a graph output (dims null: unknown shape). */
  output(name: string, dtype: DType, dims: Dim[] | null): string {
    this.outputs.push(valueInfo(name, dtype, dims));
    return name;
  }

  /** Add a weight tensor; returns its name. `dtype` overrides the typed array's own (e.g. float16 bits). */
  initializer(name: string, data: TensorData, dims: number[], dtype?: DType): string {
    this.initializers.push(tensorProto(this.claim(name), data, dims, dtype));
    return name;
  }

  /** Add an auto-named initializer; `prefix` names it for readability. */
  constant(data: TensorData, dims: number[], prefix = 'const', dtype?: DType): string {
    return this.initializer(this.freshName(prefix), data, dims, dtype);
  }

  /**
   * Add a node with explicit output names. Pass '' as an input to skip an optional input.
   * `domain` other than '' needs `useOpset(domain, version)` first.
   */
  node(opType: string, inputs: string[], outputs: string[], attrs: Record<string, AttrValue> = {}, opts: { name?: string; domain?: string } = {}): string[] {
    for (const o of outputs) this.claim(o);
    return this.addNode(opType, inputs, outputs, attrs, opts);
  }

  /** Add a single-output node; returns the output name (`output` or a fresh name from the op type). */
  op(opType: string, inputs: string[], attrs: Record<string, AttrValue> = {}, output?: string): string {
    const out = output === undefined ? this.uniqueName(opType.toLowerCase()) : this.claim(output);
    return this.addNode(opType, inputs, [out], attrs, {})[0];
  }

  private addNode(opType: string, inputs: string[], outputs: string[], attrs: Record<string, AttrValue>, opts: { name?: string; domain?: string }): string[] {
    const domain = opts.domain ?? '';
    if (!this.opsets.has(domain)) throw new Error(`node ${opType}: domain "${domain}" has no opset; call useOpset first`);
    this.nodes.push({
      opType,
      domain: domain || undefined,
      name: opts.name ?? outputs[0],
      input: inputs,
      output: outputs,
      attribute: Object.keys(attrs)
        .filter((k) => attrs[k] !== undefined)
        .map((k) => attribute(k, attrs[k])),
    });
    return outputs;
  }

  /** Declare an extra operator set (e.g. 'com.microsoft'). */
  useOpset(domain: string, version: number): void {
    this.opsets.set(domain, version);
  }

  /** The serialised ModelProto. */
  toBytes(): Uint8Array {
    const o = this.options;
    const model = onnx.ModelProto.create({
      irVersion: 8,
      producerName: o.producerName ?? 'pairgen',
      producerVersion: o.producerVersion ?? '',
      opsetImport: [...this.opsets].map(([domain, version]) => ({ domain, version })),
      metadataProps: Object.entries(o.metadata ?? {}).map(([key, value]) => ({ key, value })),
      graph: {
        name: o.name ?? 'graph',
        input: this.inputs,
        output: this.outputs,
        initializer: this.initializers,
        node: this.nodes,
      },
    });
    return onnx.ModelProto.encode(model).finish();
  }
}
