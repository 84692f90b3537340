/**
 * The `teacher:` section of a pipeline config. Every key has a description and a default here;
 * docs/teacher.md says the same in prose. Path-valued keys carry `x-path: true`: the config loader
 * resolves them against the config file's folder.
 */
export type PairMode = 'prompt-pair' | 'instruct' | 'img2img';

export interface SourcesConfig {
  /** A folder of images (jpg/png/webp/tif/gif, sorted by name) or a .parquet table. */
  path: string;
  /** Parquet only: the image column (an HF Image struct {bytes, path} or raw bytes). */
  column: string;
}

export interface TeacherConfig {
  kind: 'diffusers';
  /** The diffusers/Optimum ONNX model folder: an absolute path (resolved against the config file's folder) or a store URI (src/models). */
  model: string;
  mode: PairMode;
  /** A second model folder for the edit (instruct: an InstructPix2Pix model); null = `model`. */
  edit_model: string | null;
  /** A diffusers scheduler class name replacing the model's own; null = the model's scheduler_config.json. */
  scheduler: string | null;
  /** Keys merged over the scheduler config (e.g. use_karras_sigmas, timestep_spacing). */
  scheduler_options: Record<string, unknown>;
  steps: number;
  guidance_scale: number;
  image_guidance_scale: number;
  negative_prompt: string | null;
  height: number | null;
  width: number | null;
  strength: number | null;
  eta: number;
  edit_steps: number | null;
  sources: SourcesConfig | null;
  max_batch: number;
  /** Absent: DEFAULT_MAX_PIXELS. Optional without a schema default, so configs that do not set it keep their run_id. */
  max_pixels?: number;
}

/** Output image sides, in pixels. */
export const MIN_SIDE = 8;
export const MAX_SIDE = 16384;
/** The most pixels an output image may have unless teacher.max_pixels says otherwise: 2048 x 2048. */
export const DEFAULT_MAX_PIXELS = 2048 * 2048;

export const teacherConfigSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['model'],
  description: 'The teacher diffusion model and its sampler settings.',
  properties: {
    kind: { enum: ['diffusers'], default: 'diffusers', description: 'diffusers: an ONNX export in the diffusers / Optimum folder layout.' },
    model: {
      type: 'string',
      'x-path': true,
      description: 'Model folder (model_index.json, scheduler/, tokenizer/, text_encoder/, unet/, vae_decoder/, vae_encoder/), relative to the config file, or a store URI such as s3://bucket/models/sd15 (fetched once per node into the model cache, docs/storage.md). SDXL folders add text_encoder_2/ and tokenizer_2/.',
    },
    mode: {
      enum: ['prompt-pair', 'instruct', 'img2img'],
      default: 'prompt-pair',
      description:
        'How a pair is made. prompt-pair: source from the source prompt, edit from the target prompt with the same seed and latents (or SDEdit of the source when strength is set). instruct: source from the source prompt, then edited by an InstructPix2Pix model (edit_model) with the instruction. img2img: real portraits from `sources`, edited by an InstructPix2Pix edit model with the instruction, or by SDEdit with the target prompt at `strength`.',
    },
    edit_model: {
      type: ['string', 'null'],
      'x-path': true,
      default: null,
      description: 'A second model folder used for the edit (e.g. an InstructPix2Pix model in instruct mode), a path or a store URI like `model`; null = use `model` for both.',
    },
    scheduler: {
      type: ['string', 'null'],
      default: null,
      description: 'diffusers scheduler class name (DDIMScheduler, EulerDiscreteScheduler, EulerAncestralDiscreteScheduler, DPMSolverMultistepScheduler, LCMScheduler, PNDMScheduler) built over the model\'s scheduler config; null = the model\'s own scheduler.',
    },
    scheduler_options: {
      type: 'object',
      default: {},
      description: 'Scheduler config keys set over the model\'s scheduler_config.json (e.g. {use_karras_sigmas: true, timestep_spacing: trailing}).',
    },
    steps: { type: 'integer', minimum: 1, maximum: 1000, default: 30, description: 'Denoising steps (num_inference_steps).' },
    guidance_scale: { type: 'number', minimum: 0, default: 7.5, description: 'Classifier-free guidance scale; 1 or less disables guidance (one UNet pass per step instead of two).' },
    image_guidance_scale: { type: 'number', minimum: 0, default: 1.5, description: 'InstructPix2Pix image guidance scale (edits only); guidance needs guidance_scale > 1 and this >= 1.' },
    negative_prompt: { type: ['string', 'null'], default: null, description: 'Negative prompt for every generation; null = none (diffusers\' None), "" = the empty string.' },
    height: { type: ['integer', 'null'], minimum: MIN_SIDE, maximum: MAX_SIDE, default: null, description: 'Output height in pixels, a multiple of the VAE scale factor; null = the UNet\'s sample_size x VAE scale factor.' },
    width: { type: ['integer', 'null'], minimum: MIN_SIDE, maximum: MAX_SIDE, default: null, description: 'Output width in pixels; null = as height.' },
    max_pixels: {
      type: 'integer',
      minimum: MIN_SIDE * MIN_SIDE,
      description: `The most pixels (height x width) an output image may have; absent: ${DEFAULT_MAX_PIXELS} (2048 x 2048). Bounds the memory a size asks for before any model runs.`,
    },
    strength: {
      type: ['number', 'null'],
      exclusiveMinimum: 0,
      maximum: 1,
      default: null,
      description: 'SDEdit strength in (0, 1]: the share of the steps run on the noised source. prompt-pair: null = edit drawn from the same latents, a number = SDEdit of the source. img2img with a text-to-image edit model: required.',
    },
    eta: { type: 'number', minimum: 0, default: 0, description: 'DDIM eta (noise in the DDIM step); other schedulers ignore it.' },
    edit_steps: { type: ['integer', 'null'], minimum: 1, default: null, description: 'Denoising steps of the edit (instruct / img2img); null = steps.' },
    sources: {
      type: ['object', 'null'],
      default: null,
      additionalProperties: false,
      required: ['path'],
      description: 'img2img mode: the real source portraits. Candidate k of a prompt uses portrait number (sample index mod count).',
      properties: {
        path: { type: 'string', 'x-path': true, description: 'A folder of .jpg/.jpeg/.png/.webp/.tif/.tiff/.gif images (sorted by name) or a .parquet table.' },
        column: { type: 'string', default: 'image', description: 'Parquet only: the image column (HF Image struct {bytes, path} or binary).' },
      },
    },
    max_batch: {
      type: 'integer',
      minimum: 1,
      default: 4,
      description: 'Most candidates in one batched UNet call; a larger generate call (run.batch_size) is split. Results can differ in the last bits between batch compositions, so it is recorded in the settings.',
    },
  },
} as const;

/** Fill defaults for a partial section (the config loader does the same from the schema). */
export function withDefaults(partial: Partial<TeacherConfig> & { model: string }): TeacherConfig {
  return {
    kind: 'diffusers',
    mode: 'prompt-pair',
    edit_model: null,
    scheduler: null,
    scheduler_options: {},
    steps: 30,
    guidance_scale: 7.5,
    image_guidance_scale: 1.5,
    negative_prompt: null,
    height: null,
    width: null,
    strength: null,
    eta: 0,
    edit_steps: null,
    sources: null,
    max_batch: 4,
    ...partial,
  };
}
