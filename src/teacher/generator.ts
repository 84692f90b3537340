import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { UserError } from '../errors.ts';
import type { RuntimeConfig } from '../onnx/session.ts';
import type { CandidateSpec, GeneratedPair, PairLabeller, RgbImage } from '../types.ts';
import type { TeacherConfig } from './config.ts';
import { fromRgb, SourcePortraits, toRgb } from './images.ts';
import { loadDiffusersModel, teacherFolders, type DiffusersModel } from './model.ts';
import { DiffusionPipeline, type SampleItem, type SamplerSettings } from './pipeline.ts';
import { normalStream } from './random.ts';
import { modeProblems, outputSize, sampleSizeOf, type ModelFacts } from './modes.ts';
import { createScheduler } from './schedulers/index.ts';
import { PromptEncoder } from './text.ts';

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
    private readonly labeller: PairLabeller | null,
    /** Candidates per batched UNet call: teacher.max_batch, or fewer under runtime.max_memory. */
    readonly batch: number,
    private readonly budgeted: boolean,
  ) {}

  /** `budgetBatch`: the batch a runtime.max_memory budget allows (memory.ts); null: teacher.max_batch. */
  static async create(config: TeacherConfig, runtime: RuntimeConfig, labeller: PairLabeller | null = null, budgetBatch: number | null = null): Promise<PairGenerator> {
    const opened: DiffusersModel[] = [];
    try {
      for (const folder of teacherFolders(config)) opened.push(await loadDiffusersModel(folder.dir, runtime, folder.parts));
      const [main, editModel = main] = opened;
      const source = new DiffusionPipeline(main, new PromptEncoder(main));
      const edit = editModel !== main ? new DiffusionPipeline(editModel, new PromptEncoder(editModel)) : source;
      const sourceFacts = factsOf(main);
      const [problem] = modeProblems(config, sourceFacts, editModel !== main ? factsOf(editModel) : null);
      if (problem) throw new UserError(problem);
      const size = outputSize(config, sourceFacts);
      const sourceSettings = samplerSettings(config, main, config.steps, size);
      const editSettings = samplerSettings(config, editModel, config.edit_steps ?? config.steps, size);
      const portraits = config.mode === 'img2img' ? await SourcePortraits.open(config.sources!) : null;
      return new PairGenerator(config, source, edit, sourceSettings, editSettings, portraits, labeller, budgetBatch ?? config.max_batch, budgetBatch !== null);
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
  describe(): { height: number; width: number; scheduler: string; edit_scheduler: string; scheduler_config: Record<string, unknown>; edit_scheduler_config: Record<string, unknown>; batch?: number } {
    return {
      // Only under a budget: the batch then differs from teacher.max_batch (and older runs keep their settings).
      ...(this.budgeted ? { batch: this.batch } : {}),
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
    for (let i = 0; i < specs.length; i += this.batch) out.push(...(await this.generateBatch(specs.slice(i, i + this.batch))));
    const labeller = this.labeller;
    return labeller ? out.map((p, i) => ({ ...p, extra: { ...p.extra, ...labeller.label(p.source, p.edited, specs[i]) } })) : out;
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

/** The facts of a loaded model that the mode rules (modes.ts) need. */
function factsOf(model: DiffusersModel): ModelFacts {
  const unetConfig = join(model.dir, 'unet/config.json');
  const sampleSize = existsSync(unetConfig) ? sampleSizeOf(JSON.parse(readFileSync(unetConfig, 'utf8'))) : null;
  return { dir: model.dir, unetChannels: model.unetInChannels, latentChannels: model.vae.latentChannels, scaleFactor: model.vae.scaleFactor, sampleSize };
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

