import * as ort from 'onnxruntime-node';
import { UserError } from '../errors.ts';
import { openSession, type RuntimeConfig } from './session.ts';

/**
 * An ONNX image model with one float image input, NCHW or NHWC with 3 channels, whose layout,
 * spatial size and batch capability are read from the file. It returns every output by name; callers
 * (the face detectors and embedders) find theirs by shape, so both converted TF.js names ("Identity:0")
 * and insightface names ("448", "score_8") work. `what` names the model in errors ("SCRFD detector").
 */
export class ImageModel {
  readonly layout: 'nchw' | 'nhwc';
  /** Fixed spatial size, or null when the model accepts any size. */
  readonly height: number | null;
  readonly width: number | null;
  /** The largest batch one run accepts (1 when the batch dim is fixed to 1). */
  readonly maxBatch: number;
  readonly outputs: { name: string; shape: readonly (number | string)[] }[];
  private readonly inputName: string;

  private constructor(readonly path: string, private readonly session: ort.InferenceSession, what: string) {
    const inputs = session.inputMetadata;
    const meta = inputs[0];
    const fail = (why: string) => new UserError(`${path}: not a ${what} model: ${why}`);
    if (inputs.length !== 1 || !meta.isTensor) throw fail(`expected one image input, found ${inputs.length} inputs`);
    if (meta.type !== 'float32') throw fail(`expected a float32 input, got ${meta.type}`);
    const dims = meta.shape;
    if (dims.length !== 4) throw fail(`expected a 4-D image input, got shape [${dims.join(', ')}]`);
    if (dims[1] === 3) this.layout = 'nchw';
    else if (dims[3] === 3) this.layout = 'nhwc';
    else throw fail(`expected 3 colour channels in dim 1 (NCHW) or dim 3 (NHWC), got shape [${dims.join(', ')}]`);
    const [h, w] = this.layout === 'nchw' ? [dims[2], dims[3]] : [dims[1], dims[2]];
    this.height = typeof h === 'number' && h > 0 ? h : null;
    this.width = typeof w === 'number' && w > 0 ? w : null;
    this.maxBatch = typeof dims[0] === 'number' && dims[0] > 0 ? dims[0] : 64;
    this.inputName = meta.name;
    this.outputs = session.outputMetadata.map((o) => ({ name: o.name, shape: o.isTensor ? o.shape : [] }));
  }

  static async open(path: string, runtime: RuntimeConfig, what: string): Promise<ImageModel> {
    return new ImageModel(path, await openSession(path, runtime), what);
  }

  /**
   * Run on `count` HWC float images (already normalised) of size h×w packed in `hwc`; returns every
   * output by name. The caller splits runs by maxBatch.
   */
  async run(hwc: Float32Array, count: number, h: number, w: number): Promise<Record<string, ort.Tensor>> {
    let data = hwc;
    if (this.layout === 'nchw') {
      data = new Float32Array(hwc.length);
      const plane = h * w;
      for (let n = 0; n < count; n++) {
        const base = n * plane * 3;
        for (let i = 0; i < plane; i++) {
          data[base + i] = hwc[base + i * 3];
          data[base + plane + i] = hwc[base + i * 3 + 1];
          data[base + 2 * plane + i] = hwc[base + i * 3 + 2];
        }
      }
    }
    const dims = this.layout === 'nchw' ? [count, 3, h, w] : [count, h, w, 3];
    return await this.session.run({ [this.inputName]: new ort.Tensor('float32', data, dims) });
  }

  async close(): Promise<void> {
    await this.session.release();
  }
}
