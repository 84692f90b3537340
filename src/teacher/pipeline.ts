import { UserError } from '../errors.ts';
import type { DiffusersModel } from './model.ts';
import type { Tensor } from '../onnx/model.ts';
import type { NormalStream } from './random.ts';
import { createScheduler, timestepsForStrength } from './schedulers/index.ts';
import type { PromptEncoder, PromptEmbedding } from './text.ts';
import { decode, encodeMean, encodeScaled, toHwc, toModelImages } from './vae.ts';

/**
 * The diffusion loop shared by every mode; it composes the text encoder, the UNet, a scheduler and the
 * VAE, and holds no numerics of its own beyond classifier-free guidance:
 * - text-to-image: latents = noise * init_noise_sigma, denoise every timestep (SD 1.x/2.x, SDXL);
 * - img2img / SDEdit (`images` + `strength`): start from VAE(image) noised to the strength's first timestep;
 * - InstructPix2Pix (a UNet with extra input channels + `images`): the image latents (VAE mean,
 *   unscaled) are concatenated to the UNet input, batch [text, uncond, uncond] x [image, image, zeros].
 * All items of one call share the settings and run in one batched UNet call per step.
 */
export interface SamplerSettings {
  steps: number;
  guidanceScale: number;
  /** InstructPix2Pix only. */
  imageGuidanceScale: number;
  height: number;
  width: number;
  schedulerConfig: Record<string, unknown>;
  /** DDIM-style eta (ignored by schedulers without it). */
  eta: number;
}

export interface SampleItem {
  prompt: string;
  /** null = no negative prompt (diffusers' None); "" is the empty string. */
  negativePrompt: string | null;
  /** Initial noise [C, h, w] before multiplication by init_noise_sigma (or the img2img noise). */
  noise: Float32Array;
  /** Where the scheduler's own noise comes from (stochastic samplers), one stream per item. */
  stream: NormalStream;
  /** Float HWC in [0, 1] at height x width: the img2img start or the InstructPix2Pix condition. */
  image?: Float32Array;
}

export class DiffusionPipeline {
  constructor(
    readonly model: DiffusersModel,
    private readonly text: PromptEncoder,
  ) {}

  get isInstruct(): boolean {
    return this.model.unetInChannels > this.model.vae.latentChannels;
  }

  latentShape(settings: SamplerSettings): [number, number, number] {
    const f = this.model.vae.scaleFactor;
    return [this.model.vae.latentChannels, Math.floor(settings.height / f), Math.floor(settings.width / f)];
  }

  /** Run the loop for a batch of items; returns float HWC images in [0, 1], in item order. */
  async sample(items: SampleItem[], settings: SamplerSettings, strength: number | null = null): Promise<Float32Array[]> {
    const m = this.model;
    const b = items.length;
    const [c, h, w] = this.latentShape(settings);
    const size = c * h * w;
    for (const it of items) if (it.noise.length !== size) throw new UserError(`latents must have shape [1, ${c}, ${h}, ${w}] for ${settings.height}x${settings.width} output; got ${it.noise.length} values`);
    const instruct = this.isInstruct;
    const withImage = instruct || strength !== null;
    if (withImage && items.some((it) => !it.image)) throw new UserError(instruct ? `model ${m.dir} is an InstructPix2Pix model: it needs a source image` : 'img2img needs a source image');
    if (withImage && !m.vaeEncoder) throw new Error('pipeline bug: VAE encoder not loaded for an image-conditioned run');

    const scheduler = createScheduler(settings.schedulerConfig);
    scheduler.setTimesteps(settings.steps);
    let timesteps = scheduler.timesteps;
    const cfg = instruct ? settings.guidanceScale > 1 && settings.imageGuidanceScale >= 1 : settings.guidanceScale > 1;

    // Conditioning, in diffusers' batch order.
    const pos = await this.text.encode(items.map((it) => it.prompt));
    const neg = cfg ? await this.text.encodeNegative(items.map((it) => (instruct ? (it.negativePrompt ?? '') : it.negativePrompt))) : [];
    const groups: PromptEmbedding[][] = !cfg ? [pos] : instruct ? [pos, neg, neg] : [neg, pos];
    const cond = concatEmbeddings(groups.flat());

    let imageLatents: Tensor | null = null;
    let latents: Float32Array;
    const images = withImage ? toModelImages(items.map((it) => it.image!), settings.height, settings.width) : null;
    if (instruct) {
      const mean = await encodeMean(m, images!);
      const parts = [mean.data, ...(cfg ? [mean.data, new Float32Array(mean.data.length)] : [])];
      imageLatents = { data: concat(parts), dims: [mean.dims[0] * parts.length, ...mean.dims.slice(1)] };
    }
    if (strength !== null && !instruct) {
      timesteps = timestepsForStrength(scheduler, settings.steps, strength);
      if (timesteps.length === 0) throw new UserError(`strength ${strength} with ${settings.steps} steps leaves no denoising step; raise --strength or --steps`);
      const init = await encodeScaled(m, images!);
      latents = scheduler.addNoise(init.data, concat(items.map((it) => it.noise)), timesteps[0]);
    } else {
      const sigma = scheduler.initNoiseSigma;
      latents = concat(items.map((it) => it.noise)).map((v) => v * sigma);
    }

    const copies = groups.length;
    const stepNoise = (n: number) => concat(items.map((it) => it.stream.next(n / b)));
    for (const t of timesteps) {
      const scaled = scheduler.scaleModelInput(latents, t);
      const input = repeatWithImage(scaled, copies, imageLatents, b, [c, h, w]);
      const eps = await this.unet(input, t, cond, copies * b, settings);
      const guided = cfg ? guide(eps, b * size, instruct, settings) : eps;
      latents = scheduler.step(guided, t, latents, { eta: settings.eta, noise: stepNoise }).prevSample;
    }

    const decoded = await decode(m, { data: latents, dims: [b, c, h, w] });
    return items.map((_, i) => toHwc(decoded, i));
  }

  private async unet(sample: Tensor, t: number, cond: Conditioning, batch: number, settings: SamplerSettings): Promise<Float32Array> {
    const unet = this.model.unet;
    const tShape = unet.input('timestep').shape;
    // The timestep input is a scalar, [1] or [batch] depending on the export.
    const tDims = tShape.length === 0 ? [] : tShape[0] === 1 ? [1] : [batch];
    const feeds: Parameters<typeof unet.run>[0] = {
      sample,
      timestep: { data: new Array(tDims.length ? tDims[0] : 1).fill(t), dims: tDims },
      encoder_hidden_states: { data: cond.hidden, dims: [batch, this.text.seqLen, cond.hidden.length / batch / this.text.seqLen] },
    };
    if (this.model.kind === 'sdxl') {
      const { height: H, width: W } = settings;
      feeds.text_embeds = { data: cond.pooled!, dims: [batch, cond.pooled!.length / batch] };
      // time ids: original size, crop top-left, target size (= output size, crop (0, 0)).
      feeds.time_ids = { data: new Array(batch).fill([H, W, 0, 0, H, W]).flat(), dims: [batch, 6] };
    }
    const outName = unet.outputs.has('out_sample') ? 'out_sample' : [...unet.outputs.keys()][0];
    const [out] = await unet.run(feeds, [outName]);
    return out.data;
  }
}

interface Conditioning {
  hidden: Float32Array;
  pooled: Float32Array | null;
}

function concatEmbeddings(list: PromptEmbedding[]): Conditioning {
  const hidden = concat(list.map((e) => e.hidden));
  const pooled = list[0].pooled ? concat(list.map((e) => e.pooled!)) : null;
  return { hidden, pooled };
}

function concat(parts: Float32Array[]): Float32Array {
  const out = new Float32Array(parts.reduce((a, p) => a + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

/** `copies` copies of the batch, each item with the image latents appended on the channel axis. */
function repeatWithImage(latents: Float32Array, copies: number, image: Tensor | null, b: number, [c, h, w]: number[]): Tensor {
  if (!image) return { data: concat(new Array(copies).fill(latents)), dims: [copies * b, c, h, w] };
  const ci = image.dims[1];
  const plane = h * w;
  const out = new Float32Array(copies * b * (c + ci) * plane);
  for (let k = 0; k < copies * b; k++) {
    const base = k * (c + ci) * plane;
    const j = k % b;
    out.set(latents.subarray(j * c * plane, (j + 1) * c * plane), base);
    out.set(image.data.subarray(k * ci * plane, (k + 1) * ci * plane), base + c * plane);
  }
  return { data: out, dims: [copies * b, c + ci, h, w] };
}

/** Classifier-free guidance over the batched UNet output (n = items x latent size per group). */
function guide(eps: Float32Array, n: number, instruct: boolean, s: SamplerSettings): Float32Array {
  const out = new Float32Array(n);
  if (instruct) {
    // [text, image, uncond]: ε = ε_u + s_T (ε_t − ε_i) + s_I (ε_i − ε_u)
    for (let i = 0; i < n; i++) {
      const et = eps[i];
      const ei = eps[n + i];
      const eu = eps[2 * n + i];
      out[i] = eu + s.guidanceScale * (et - ei) + s.imageGuidanceScale * (ei - eu);
    }
  } else {
    // [uncond, text]: ε = ε_u + s (ε_t − ε_u)
    for (let i = 0; i < n; i++) out[i] = eps[i] + s.guidanceScale * (eps[n + i] - eps[i]);
  }
  return out;
}
