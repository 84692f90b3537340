import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import onnxProto from 'onnx-proto';

const { onnx } = onnxProto;

/** One graph input or output as onnxruntime reports it: dtype name and dims (numbers or symbolic names). */
export interface OnnxIo {
  name: string;
  type: string;
  shape: (number | string)[];
}

export interface OnnxHeader {
  inputs: OnnxIo[];
  outputs: OnnxIo[];
  /** Files the initializers keep their weights in (external data), relative to the model's folder. */
  externalFiles: string[];
}

const DTYPES: Record<number, string> = {
  1: 'float32', 2: 'uint8', 3: 'int8', 4: 'uint16', 5: 'int16', 6: 'int32', 7: 'int64', 8: 'string',
  9: 'bool', 10: 'float16', 11: 'float64', 12: 'uint32', 13: 'uint64', 16: 'bfloat16',
};

/**
 * Read an ONNX model's graph inputs, outputs and external-data files WITHOUT loading its weights.
 * Opening an onnxruntime session would read every weight (10 GB for an SDXL UNet) just to learn the
 * input names; this walks the protobuf and seeks over every large field (initializer bytes, nodes), so it
 * costs milliseconds whatever the model's size. onnx-proto decodes the few small messages kept.
 * Throws an Error with a short reason when the file is not an ONNX model.
 */
export function readOnnxHeader(path: string): OnnxHeader {
  const r = new FieldReader(path);
  try {
    const head = r.peekText(200);
    if (head.startsWith('version https://git-lfs')) throw new Error('it is a Git LFS pointer, not the model: fetch the real file (git lfs pull)');
    if (/^\s*</.test(head)) throw new Error('it is an HTML/XML page, not an ONNX model (a failed download?)');
    let graph: { start: number; end: number } | null = null;
    for (const f of r.fields(0, r.size)) {
      if (f.field === 7 && f.wire === 2) graph = { start: f.start, end: f.end };
    }
    if (!graph) throw new Error('no graph in the file (not an ONNX ModelProto)');
    const inputs: OnnxIo[] = [];
    const outputs: OnnxIo[] = [];
    const initializers = new Set<string>();
    const external = new Set<string>();
    for (const f of r.fields(graph.start, graph.end)) {
      if (f.wire !== 2) continue;
      if (f.field === 11 || f.field === 12) (f.field === 11 ? inputs : outputs).push(valueInfo(r.bytes(f.start, f.end)));
      else if (f.field === 5) {
        const t = initializer(r, f.start, f.end);
        initializers.add(t.name);
        if (t.location) external.add(t.location);
      }
    }
    // Older exports list initializers among the inputs; onnxruntime does not report those as inputs.
    return { inputs: inputs.filter((i) => !initializers.has(i.name)), outputs, externalFiles: [...external].sort() };
  } finally {
    r.close();
  }
}

function valueInfo(bytes: Uint8Array): OnnxIo {
  const v = onnx.ValueInfoProto.decode(bytes);
  const t = v.type?.tensorType;
  return {
    name: v.name ?? '',
    type: t ? (DTYPES[t.elemType ?? 0] ?? `type ${t.elemType}`) : 'non-tensor',
    shape: (t?.shape?.dim ?? []).map((d) => (d.dimParam ? d.dimParam : d.dimValue !== undefined && d.dimValue !== null ? Number(d.dimValue) : '?')),
  };
}

/** An initializer's name and external-data file, reading only its small fields. */
function initializer(r: FieldReader, start: number, end: number): { name: string; location: string | null } {
  let name = '';
  let location: string | null = null;
  for (const f of r.fields(start, end)) {
    if (f.field === 8 && f.wire === 2) name = Buffer.from(r.bytes(f.start, f.end)).toString('utf8');
    else if (f.field === 13 && f.wire === 2) {
      const entry = onnx.StringStringEntryProto.decode(r.bytes(f.start, f.end));
      if (entry.key === 'location' && entry.value) location = entry.value;
    }
  }
  return { name, location };
}

interface Field {
  field: number;
  wire: number;
  /** Length-delimited fields: the payload's [start, end) in the file. */
  start: number;
  end: number;
}

/** Protobuf fields of a byte range of a file, read through a small window with positioned reads. */
class FieldReader {
  private readonly fd: number;
  readonly size: number;
  private window = Buffer.alloc(1 << 16);
  private windowStart = 0;
  private windowEnd = 0;

  constructor(path: string) {
    this.fd = openSync(path, 'r');
    this.size = fstatSync(this.fd).size;
  }

  close(): void {
    closeSync(this.fd);
  }

  peekText(n: number): string {
    return Buffer.from(this.bytes(0, Math.min(n, this.size))).toString('latin1');
  }

  bytes(start: number, end: number): Uint8Array {
    if (end > this.size) throw new Error('the file is truncated');
    const out = Buffer.alloc(end - start);
    let done = 0;
    while (done < out.length) {
      const n = readSync(this.fd, out, done, out.length - done, start + done);
      if (n === 0) throw new Error('the file is truncated');
      done += n;
    }
    return out;
  }

  private byte(pos: number): number {
    if (pos >= this.size) throw new Error('the file is truncated');
    if (pos < this.windowStart || pos >= this.windowEnd) {
      this.windowStart = pos;
      this.windowEnd = pos + readSync(this.fd, this.window, 0, this.window.length, pos);
    }
    return this.window[pos - this.windowStart];
  }

  private varint(pos: number): { value: number; next: number } {
    let value = 0;
    let scale = 1;
    for (let i = 0; i < 10; i++) {
      const b = this.byte(pos + i);
      value += (b & 0x7f) * scale;
      scale *= 128;
      if (b < 0x80) return { value, next: pos + i + 1 };
    }
    throw new Error('malformed protobuf varint (not an ONNX file)');
  }

  *fields(start: number, end: number): Generator<Field> {
    let pos = start;
    while (pos < end) {
      const tag = this.varint(pos);
      const field = Math.floor(tag.value / 8);
      const wire = tag.value % 8;
      pos = tag.next;
      if (field === 0) throw new Error('malformed protobuf field (not an ONNX file)');
      if (wire === 0) pos = this.varint(pos).next;
      else if (wire === 1) pos += 8;
      else if (wire === 5) pos += 4;
      else if (wire === 2) {
        const len = this.varint(pos);
        const s = len.next;
        const e = s + len.value;
        if (e > end) throw new Error('the file is truncated or not an ONNX model');
        yield { field, wire, start: s, end: e };
        pos = e;
        continue;
      } else throw new Error(`unsupported protobuf wire type ${wire} (not an ONNX file)`);
      if (pos > end) throw new Error('the file is truncated or not an ONNX model');
    }
  }
}
