import { extname } from 'node:path';
import type { Command } from 'commander';
import { UserError } from '../errors.ts';
import { DEFAULT_MAX_PIXELS, MAX_SIDE, MIN_SIDE } from '../teacher/config.ts';
import type { SampleRequest } from '../teacher/sample.ts';
import { action } from './common.ts';
import { localPath } from '../store/index.ts';

/** `pairgen sample`'s options as given on the command line (strings). */
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
const side = (flag: string, text: string) => number(flag, text, (v) => Number.isInteger(v) && v >= MIN_SIDE && v <= MAX_SIDE, `an integer from ${MIN_SIDE} to ${MAX_SIDE}`);

/** The command line's strings → a checked SampleRequest; every bad option is a UserError naming the flag. */
export function parseSampleOptions(o: SampleOptions): SampleRequest {
  const outExt = extname(o.out).toLowerCase();
  if (outExt !== '.png' && outExt !== '.npy') throw new UserError(`--out: expected a .png or .npy file name, got ${o.out}`);
  localPath(o.out); // refuses special file systems (/proc, /sys, /dev)
  if (o.scheduler && o.schedulerConfig) throw new UserError('--scheduler and --scheduler-config: give one, not both');
  if (o.seed !== undefined && o.latents) throw new UserError('--seed and --latents: give one, not both');
  const steps = int('--steps', o.steps, 1);
  const height = side('--height', o.height);
  const width = side('--width', o.width);
  if (height * width > DEFAULT_MAX_PIXELS) throw new UserError(`--height x --width: ${height} x ${width} is ${height * width} pixels, more than ${DEFAULT_MAX_PIXELS} (2048 x 2048), the most an image may have`);
  const guidance = number('--guidance', o.guidance, (v) => v >= 0, 'a number >= 0');
  const imageGuidance = number('--image-guidance', o.imageGuidance ?? '1.5', (v) => v >= 0, 'a number >= 0');
  const eta = number('--eta', o.eta ?? '0', (v) => v >= 0, 'a number >= 0');
  const strength = o.strength === undefined ? null : number('--strength', o.strength, (v) => v > 0 && v <= 1, 'a number in (0, 1]');
  const seed = o.seed === undefined ? 0 : number('--seed', o.seed, (v) => Number.isSafeInteger(v) && v >= 0, 'an integer in [0, 2^53)');
  if (strength !== null && !o.image) throw new UserError('--strength needs --image (img2img starts from a source image)');
  const threads = int('--threads', o.threads ?? '1', 0);
  return {
    model: o.model, prompt: o.prompt, negativePrompt: o.negativePrompt ?? null, image: o.image ?? null,
    scheduler: o.scheduler ?? null, schedulerConfig: o.schedulerConfig ?? null,
    steps, guidance, imageGuidance, strength, eta, height, width, seed, latents: o.latents ?? null, threads, out: o.out,
  };
}


export function registerSample(program: Command): void {
  program
    .command('sample')
    .description(
      'render one image with a diffusers ONNX model folder: text-to-image (SD 1.x/2.x, SDXL), img2img with --image and --strength, or InstructPix2Pix with --image on an InstructPix2Pix model',
    )
    .requiredOption('--model <dir>', 'diffusers / Optimum ONNX model folder: a local path, or s3://bucket/prefix (fetched once into the model cache)')
    .requiredOption('--prompt <text>', 'the prompt (for InstructPix2Pix: the instruction)')
    .option('--negative-prompt <text>', 'negative prompt; without it there is none (diffusers\' None), "" is the empty string')
    .option('--image <file>', 'source image: .png/.jpg/.webp (resized to the output size) or .npy float32 HWC in [0, 1]')
    .option('--scheduler <class>', 'diffusers scheduler class name, built over the model\'s scheduler config')
    .option('--scheduler-config <file>', 'a scheduler_config.json to use instead of the model\'s')
    .requiredOption('--steps <n>', 'denoising steps')
    .requiredOption('--guidance <g>', 'classifier-free guidance scale (<= 1 disables it)')
    .option('--image-guidance <g>', 'InstructPix2Pix image guidance scale', '1.5')
    .option('--strength <s>', 'img2img / SDEdit strength in (0, 1], with --image on a text-to-image model')
    .option('--eta <eta>', 'DDIM eta', '0')
    .requiredOption('--height <px>', 'output height in pixels')
    .requiredOption('--width <px>', 'output width in pixels')
    .option('--seed <n>', 'seed of the initial latents (project PRNG, see docs/schedulers.md); default 0')
    .option('--latents <file>', '.npy float32 [1, 4, h, w] initial latents, before multiplication by init_noise_sigma')
    .option('--threads <n>', 'onnxruntime intra-op threads (0 = its default)', '1')
    .requiredOption('--out <file>', 'output .png, or .npy float32 HWC in [0, 1]')
    .action(
      action(async (o: SampleOptions) => {
        const request = parseSampleOptions(o);
        const { sampleToFile } = await import('../teacher/sample.ts');
        const { localModelFolder } = await import('../models/index.ts');
        await sampleToFile({ ...request, model: await localModelFolder(request.model, '--model') });
      }),
    );
}

