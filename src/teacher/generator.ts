import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { UserError } from '../errors.ts';
import type { RuntimeConfig } from '../onnx/session.ts';
import type { CandidateSpec, GeneratedPair, RgbImage } from '../types.ts';
import type { TeacherConfig } from './config.ts';
import { fromRgb, SourcePortraits, toRgb } from './images.ts';
import { loadDiffusersModel, teacherFolders, type DiffusersModel } from './model.ts';
import { DiffusionPipeline, type SampleItem, type SamplerSettings } from './pipeline.ts';
import { normalStream } from './random.ts';
import { createScheduler } from './schedulers/index.ts';
import { PromptEncoder } from './text.ts';
import { GroundTruth } from '../reference/truth.ts';

/**
 * The teacher side of a candidate pair, in the configured mode (see TeacherConfig.mode).
 * Lives in the worker thread (worker.ts); everything here is a pure function of the specs.
 */
export class PairGenerator {
  private constructor(
    private readonly config: TeacherConfig,
    private readonly source: DiffusionPipeline,
    private readonly edit: DiffusionPipeline,
    private readonly sourceSettings: SamplerSettings,
    private readonly editSettings: SamplerSettings,
    private readonly portraits: SourcePortraits | null,
    private readonly truth: GroundTruth | null,
  ) {}

  static async create(config: TeacherConfig, runtime: RuntimeConfig): Promise<PairGenerator> {
    const opened: DiffusersModel[] = [];
    try {
      for (const folder of teacherFolders(config)) opened.push(await loadDiffusersModel(folder.dir, runtime, folder.parts));
      const [main, editModel = main] = opened;
      const source = new DiffusionPipeline(main, new PromptEncoder(main));
      const edit = editModel !== main ? new DiffusionPipeline(editModel, new PromptEncoder(editModel)) : source;
      checkMode(config, source, edit);
      const size = outputSize(config, main);
      const sourceSettings = samplerSettings(config, main, config.steps, size);
      const editSettings = samplerSettings(config, editModel, config.edit_steps ?? config.steps, size);
      const portraits = config.mode === 'img2img' ? await SourcePortraits.open(config.sources!) : null;
      // A reference teacher folder (src/reference) knows which bank item each image is: record it.
      const editDir = config.edit_model ?? config.model;
      const truth = existsSync(join(editDir, 'reference.json')) ? await GroundTruth.open(editDir) : null;
      return new PairGenerator(config, source, edit, sourceSettings, editSettings, portraits, truth);
    } catch (e) {
      for (const m of opened) await m.release();
      throw e;
    }
  }

  /**
   * Output height/width, the resolved scheduler classes and their whole configs (the model's
   * scheduler_config.json with the config's overrides): what the teacher's StageInfo records, so every
   * pair row says exactly how it was sampled.
   */
  describe(): { height: number; width: number; scheduler: string; edit_scheduler: string; scheduler_config: Record<string, unknown>; edit_scheduler_config: Record<string, unknown> } {
    return {
      height: this.sourceSettings.height,
      width: this.sourceSettings.width,
      scheduler: String(this.sourceSettings.schedulerConfig._class_name),
      edit_scheduler: String(this.editSettings.schedulerConfig._class_name),
      scheduler_config: { ...this.sourceSettings.schedulerConfig },
      edit_scheduler_config: { ...this.editSettings.schedulerConfig },
    };
  }

  async generate(specs: CandidateSpec[]): Promise<GeneratedPair[]> {
    const out: GeneratedPair[] = [];
    for (let i = 0; i < specs.length; i += this.config.max_batch) out.push(...(await this.generateBatch(specs.slice(i, i + this.config.max_batch))));
    const truth = this.truth;
    return truth ? out.map((p) => ({ ...p, extra: { ...p.extra, ...truth.label(p.source, p.edited) } })) : out;
  }

  private async generateBatch(specs: CandidateSpec[]): Promise<GeneratedPair[]> {
    const { height, width } = this.sourceSettings;
    const cfg = this.config;
    const item = (pipe: DiffusionPipeline, spec: CandidateSpec, prompt: string, image?: RgbImage): SampleItem => {
      // Every generation of a candidate starts its own stream from the candidate's seed: the source and
      // the edit see the same initial noise (prompt-pair's "same seed and latents").
      const stream = normalStream(spec.seed);
      const [c, h, w] = pipe.latentShape(this.sourceSettings);
      return { prompt, negativePrompt: cfg.negative_prompt, noise: stream.next(c * h * w), stream, image: image && fromRgb(image) };
    };
    const rgb = (hwc: Float32Array) => toRgb(hwc, width, height);

    if (cfg.mode === 'prompt-pair' && cfg.strength === null) {
      // Sources and edits share one batched UNet call per step.
      const items = [...specs.map((s) => item(this.source, s, s.sourcePrompt)), ...specs.map((s) => item(this.source, s, s.targetPrompt))];
      const images = await this.source.sample(items, this.sourceSettings);
      return specs.map((_, i) => ({ source: rgb(images[i]), edited: rgb(images[specs.length + i]) }));
    }

    let sources: RgbImage[];
    if (cfg.mode === 'img2img') {
      sources = await Promise.all(specs.map(async (s) => rgb(await this.portraits!.get(s.sampleIndex, width, height))));
    } else {
      sources = (await this.source.sample(specs.map((s) => item(this.source, s, s.sourcePrompt)), this.sourceSettings)).map(rgb);
    }
    // The edit starts from the stored 8-bit source, so it can be recomputed from the dataset row alone.
    const instruct = this.edit.isInstruct;
    const editItems = specs.map((s, i) => item(this.edit, s, instruct ? s.instruction : s.targetPrompt, sources[i]));
    const edited = await this.edit.sample(editItems, this.editSettings, instruct ? null : cfg.strength);
    return specs.map((s, i) => ({
      source: sources[i],
      edited: rgb(edited[i]),
      ...(this.portraits ? { extra: { source_portrait: s.sampleIndex % this.portraits.count } } : {}),
    }));
  }

  async close(): Promise<void> {
    await this.source.model.release();
    if (this.edit !== this.source) await this.edit.model.release();
  }
}

function checkMode(config: TeacherConfig, source: DiffusionPipeline, edit: DiffusionPipeline): void {
  if (source.isInstruct) throw new UserError(`teacher.model: ${config.model} is an InstructPix2Pix model (its UNet takes image latents); it cannot draw sources from a prompt. Put it in teacher.edit_model`);
  if (config.mode === 'instruct' && !edit.isInstruct) {
    throw new UserError(`teacher.edit_model: mode "instruct" needs an InstructPix2Pix model (a UNet with ${edit.model.vae.latentChannels * 2} input channels); ${edit.model.dir} has ${edit.model.unetInChannels}`);
  }
  if (config.mode === 'img2img') {
    if (!config.sources) throw new UserError('teacher.sources: mode "img2img" needs sources: {path: <folder or .parquet>}');
    if (!edit.isInstruct && config.strength === null) throw new UserError('teacher.strength: mode "img2img" with a text-to-image edit model needs a strength in (0, 1]');
  }
  if (config.mode === 'prompt-pair' && config.edit_model !== null && config.edit_model !== config.model && config.strength === null) {
    throw new UserError('teacher.edit_model: mode "prompt-pair" without strength draws both images from teacher.model; set strength to SDEdit with the edit model, or remove edit_model');
  }
}

function outputSize(config: TeacherConfig, model: DiffusersModel): { height: number; width: number } {
  let base: number | null = null;
  const unetConfig = join(model.dir, 'unet/config.json');
  if (existsSync(unetConfig)) {
    const sampleSize = (JSON.parse(readFileSync(unetConfig, 'utf8')) as { sample_size?: unknown }).sample_size;
    if (typeof sampleSize === 'number') base = sampleSize * model.vae.scaleFactor;
  }
  const height = config.height ?? config.width ?? base;
  const width = config.width ?? config.height ?? base;
  if (height === null || width === null) throw new UserError(`teacher.height: ${model.dir}/unet/config.json has no sample_size; set teacher.height and teacher.width`);
  const f = model.vae.scaleFactor;
  for (const [key, v] of [['height', height], ['width', width]] as const) {
    if (v % f !== 0) throw new UserError(`teacher.${key}: ${v} is not a multiple of the VAE scale factor ${f}`);
  }
  return { height, width };
}

/** The model's scheduler config with the configured class and options applied (a UserError for an unknown class). */
export function resolveSchedulerConfig(base: Record<string, unknown>, className: string | null, options: Record<string, unknown>): Record<string, unknown> {
  const config = { ...base, ...(className ? { _class_name: className } : {}), ...options };
  createScheduler(config); // fails early, naming the known classes
  return config;
}

function samplerSettings(config: TeacherConfig, model: DiffusersModel, steps: number, size: { height: number; width: number }): SamplerSettings {
  return {
    steps,
    guidanceScale: config.guidance_scale,
    imageGuidanceScale: config.image_guidance_scale,
    height: size.height,
    width: size.width,
    schedulerConfig: resolveSchedulerConfig(model.schedulerConfig, config.scheduler, config.scheduler_options),
    eta: config.eta,
  };
}
