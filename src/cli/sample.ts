import type { Command } from 'commander';
import { sampleToFile } from '../teacher/sample.ts';
import { action } from './common.ts';

export function registerSample(program: Command): void {
  program
    .command('sample')
    .description(
      'render one image with a diffusers ONNX model folder: text-to-image (SD 1.x/2.x, SDXL), img2img with --image and --strength, or InstructPix2Pix with --image on an InstructPix2Pix model',
    )
    .requiredOption('--model <dir>', 'diffusers / Optimum ONNX model folder')
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
    .action(action(sampleToFile));
}

