import { extname } from 'node:path';
import { UserError } from '../errors.ts';
import { DEFAULT_RUNTIME } from '../onnx/session.ts';
import { encodeImage } from '../image/encode.ts';
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

/** `pairgen sample`'s options as given on the command line (strings), validated here. */
export interface SampleOptions {
  model: string;
  prompt: string;
  negativePrompt?: string;
  image?: string;
  scheduler?: string;
  schedulerConfig?: string;
  steps: string;
  guidance: string;
  imageGuidance?: string;
  strength?: string;
  eta?: string;
  height: string;
  width: string;
  seed?: string;
  latents?: string;
  out: string;
  threads?: string;
}

function number(flag: string, text: string, check: (v: number) => boolean, expected: string): number {
  const v = Number(text);
  if (text.trim() === '' || !Number.isFinite(v) || !check(v)) throw new UserError(`${flag}: expected ${expected}, got "${text}"`);
  return v;
}

const int = (flag: string, text: string, min: number) => number(flag, text, (v) => Number.isInteger(v) && v >= min, `an integer >= ${min}`);

/** Render one image to a .png or .npy file (`pairgen sample`); every bad option is a UserError. */
export async function sampleToFile(o: SampleOptions): Promise<void> {
  const outExt = extname(o.out).toLowerCase();
  if (outExt !== '.png' && outExt !== '.npy') throw new UserError(`--out: expected a .png or .npy file name, got ${o.out}`);
  if (o.scheduler && o.schedulerConfig) throw new UserError('--scheduler and --scheduler-config: give one, not both');
  if (o.seed !== undefined && o.latents) throw new UserError('--seed and --latents: give one, not both');
  const steps = int('--steps', o.steps, 1);
  const height = int('--height', o.height, 8);
  const width = int('--width', o.width, 8);
  const guidance = number('--guidance', o.guidance, (v) => v >= 0, 'a number >= 0');
  const imageGuidance = number('--image-guidance', o.imageGuidance ?? '1.5', (v) => v >= 0, 'a number >= 0');
  const eta = number('--eta', o.eta ?? '0', (v) => v >= 0, 'a number >= 0');
  const strength = o.strength === undefined ? null : number('--strength', o.strength, (v) => v > 0 && v <= 1, 'a number in (0, 1]');
  const seed = o.seed === undefined ? 0 : number('--seed', o.seed, (v) => Number.isSafeInteger(v) && v >= 0, 'an integer in [0, 2^53)');
  if (strength !== null && !o.image) throw new UserError('--strength needs --image (img2img starts from a source image)');
  const threads = int('--threads', o.threads ?? '1', 0);

  const model = await loadDiffusersModel(o.model, { ...DEFAULT_RUNTIME, intra_op_threads: threads }, { vaeEncoder: Boolean(o.image), vaeDecoder: true });
  try {
    const pipeline = new DiffusionPipeline(model, new PromptEncoder(model));
    if (pipeline.isInstruct && !o.image) throw new UserError(`--image: ${o.model} is an InstructPix2Pix model; it edits a source image`);
    if (pipeline.isInstruct && strength !== null) throw new UserError(`--strength: ${o.model} is an InstructPix2Pix model; it takes no strength`);
    if (!pipeline.isInstruct && o.image && strength === null) throw new UserError('--image on a text-to-image model is img2img: give --strength');
    const f = model.vae.scaleFactor;
    if (height % f || width % f) throw new UserError(`--height/--width: ${height}x${width} must be multiples of the VAE scale factor ${f}`);

    const base = o.schedulerConfig ? readSchedulerConfig(o.schedulerConfig) : model.schedulerConfig;
    const schedulerConfig = resolveSchedulerConfig(base, o.scheduler ?? null, {});
    const settings = { steps, guidanceScale: guidance, imageGuidanceScale: imageGuidance, height, width, schedulerConfig, eta };
    const [c, h, w] = pipeline.latentShape(settings);
    const stream = normalStream(seed);
    let noise: Float32Array;
    if (o.latents) {
      const l = readNpy(o.latents);
      if (l.shape.join(',') !== [1, c, h, w].join(',')) throw new UserError(`--latents: ${o.latents} has shape (${l.shape.join(', ')}); expected (1, ${c}, ${h}, ${w}) for ${height}x${width}`);
      noise = l.data;
    } else {
      noise = stream.next(c * h * w);
    }
    const image = o.image ? await readImageInput(o.image, width, height) : undefined;
    const [out] = await pipeline.sample([{ prompt: o.prompt, negativePrompt: o.negativePrompt ?? null, noise, stream, image }], settings, pipeline.isInstruct ? null : strength);

    const data = outExt === '.npy' ? (tmp: string) => writeNpy(tmp, { shape: [height, width, 3], data: out }) : await encodeImage(toRgb(out, width, height), { format: 'png' });
    await writeFileAtomic(o.out, data, { context: '--out' });
    log.info(`wrote ${o.out}`, { scheduler: schedulerConfig._class_name, steps, height, width });
  } finally {
    await model.release();
  }
}
