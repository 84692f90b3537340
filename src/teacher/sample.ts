import { UserError } from '../errors.ts';
import { DEFAULT_RUNTIME } from '../onnx/session.ts';
import { encodeImage } from '../image/index.ts';
import { log } from '../util/log.ts';
import { resolveSchedulerConfig } from './generator.ts';
import { readImageInput, toRgb } from './images.ts';
import { loadDiffusersModel } from './model.ts';
import { readNpy, writeNpy } from './npy.ts';
import { DiffusionPipeline } from './pipeline.ts';
import { normalStream } from './random.ts';
import { readSchedulerConfig } from './schedulers/index.ts';
import { PromptEncoder } from './text.ts';
import { writeFileAtomic } from '../util/atomic.ts';

/** One image to render (`pairgen sample`), its options already parsed and checked by the CLI. */
export interface SampleRequest {
  model: string;
  prompt: string;
  negativePrompt: string | null;
  /** Source image (.png/.jpg/... or .npy float32 HWC in [0, 1]) for img2img / InstructPix2Pix. */
  image: string | null;
  /** A scheduler class to build over the model's (or `schedulerConfig`'s) config. */
  scheduler: string | null;
  schedulerConfig: string | null;
  steps: number;
  guidance: number;
  imageGuidance: number;
  /** img2img / SDEdit strength in (0, 1]; null for text-to-image and InstructPix2Pix. */
  strength: number | null;
  eta: number;
  height: number;
  width: number;
  seed: number;
  /** .npy initial latents instead of the seed's. */
  latents: string | null;
  threads: number;
  /** .png or .npy. */
  out: string;
}

/** Render one image to a .png or .npy file; what only the model can tell (its kind, its VAE factor) is checked here. */
export async function sampleToFile(r: SampleRequest): Promise<void> {
  const { steps, height, width, guidance, imageGuidance, eta, strength, seed, threads } = r;
  const model = await loadDiffusersModel(r.model, { ...DEFAULT_RUNTIME, intra_op_threads: threads }, { vaeEncoder: Boolean(r.image), vaeDecoder: true });
  try {
    const pipeline = new DiffusionPipeline(model, new PromptEncoder(model));
    if (pipeline.isInstruct && !r.image) throw new UserError(`--image: ${r.model} is an InstructPix2Pix model; it edits a source image`);
    if (pipeline.isInstruct && strength !== null) throw new UserError(`--strength: ${r.model} is an InstructPix2Pix model; it takes no strength`);
    if (!pipeline.isInstruct && r.image && strength === null) throw new UserError('--image on a text-to-image model is img2img: give --strength');
    const f = model.vae.scaleFactor;
    if (height % f || width % f) throw new UserError(`--height/--width: ${height}x${width} must be multiples of the VAE scale factor ${f}`);

    const base = r.schedulerConfig ? readSchedulerConfig(r.schedulerConfig) : model.schedulerConfig;
    const schedulerConfig = resolveSchedulerConfig(base, r.scheduler, {});
    const settings = { steps, guidanceScale: guidance, imageGuidanceScale: imageGuidance, height, width, schedulerConfig, eta };
    const [c, h, w] = pipeline.latentShape(settings);
    const stream = normalStream(seed);
    let noise: Float32Array;
    if (r.latents) {
      const l = readNpy(r.latents);
      if (l.shape.join(',') !== [1, c, h, w].join(',')) throw new UserError(`--latents: ${r.latents} has shape (${l.shape.join(', ')}); expected (1, ${c}, ${h}, ${w}) for ${height}x${width}`);
      noise = l.data;
    } else {
      noise = stream.next(c * h * w);
    }
    const image = r.image ? await readImageInput(r.image, width, height) : undefined;
    const [out] = await pipeline.sample([{ prompt: r.prompt, negativePrompt: r.negativePrompt, noise, stream, image }], settings, pipeline.isInstruct ? null : strength);

    const data = r.out.toLowerCase().endsWith('.npy') ? (tmp: string) => writeNpy(tmp, { shape: [height, width, 3], data: out }) : await encodeImage(toRgb(out, width, height), { format: 'png' });
    await writeFileAtomic(r.out, data, { context: '--out' });
    log.info(`wrote ${r.out}`, { scheduler: schedulerConfig._class_name, steps, height, width });
  } finally {
    await model.release();
  }
}
