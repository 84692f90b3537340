import { DEFAULT_MAX_PIXELS, MAX_SIDE, MIN_SIDE, type TeacherConfig } from './config.ts';

/** What the mode rules need to know of a model folder (from a loaded model, or from its files' headers). */
export interface ModelFacts {
  dir: string;
  /** Channels of the UNet's `sample` input; null when unknown (a dynamic dim, or an unreadable UNet). */
  unetChannels: number | null;
  latentChannels: number;
  /** Pixels per latent cell; null when unknown. */
  scaleFactor: number | null;
  /** `sample_size` of unet/config.json (in latent cells), null when absent. */
  sampleSize: number | null;
}

/** true for an InstructPix2Pix UNet (latents and image latents in), null when the channels are unknown. */
export function isInstructModel(f: ModelFacts | null): boolean | null {
  return f && f.unetChannels !== null ? f.unetChannels > f.latentChannels : null;
}

/**
 * Every way the config's mode and size do not fit its models, in a fixed order: the rules the teacher
 * loads with (generator.ts throws the first) and `pairgen check` reports (all of them). `edit` is the
 * edit model's facts, null when the mode uses teacher.model for both images.
 */
export function modeProblems(t: TeacherConfig, source: ModelFacts | null, edit: ModelFacts | null): string[] {
  const problems: string[] = [];
  const editFacts = edit ?? source;
  if (isInstructModel(source) === true) {
    problems.push(`teacher.model: ${t.model} is an InstructPix2Pix model (its UNet takes ${source!.unetChannels} channels: latents and image latents); it cannot draw sources from a prompt. Put it in teacher.edit_model and a text-to-image model in teacher.model`);
  }
  if (t.mode === 'instruct' && isInstructModel(editFacts) === false) {
    problems.push(`teacher.edit_model: mode "instruct" needs an InstructPix2Pix model (a UNet with ${editFacts!.latentChannels * 2} input channels); ${editFacts!.dir} has ${editFacts!.unetChannels}`);
  }
  if (t.mode === 'img2img') {
    if (isInstructModel(editFacts) === false && t.strength === null) problems.push('teacher.strength: mode "img2img" with a text-to-image edit model needs a strength in (0, 1]');
    if (!t.sources) problems.push('teacher.sources: mode "img2img" edits real portraits: set sources.path to a folder of images or a Parquet table');
  }
  for (const [key, f] of [['teacher.model', source], ['teacher.edit_model', edit]] as const) {
    if (!f?.scaleFactor) continue;
    for (const side of ['height', 'width'] as const) {
      const v = t[side];
      if (v !== null && v % f.scaleFactor !== 0) problems.push(`teacher.${side}: ${v} is not a multiple of ${f.scaleFactor}, the VAE scale factor of ${key} (latents are ${f.scaleFactor}x smaller than the image)`);
    }
  }
  if (t.height === null && t.width === null && source && source.sampleSize === null) {
    problems.push(`teacher.height: ${t.model}/unet/config.json has no sample_size; set teacher.height and teacher.width`);
  }
  const base = source?.sampleSize != null && source.scaleFactor != null ? source.sampleSize * source.scaleFactor : null;
  const [height, width] = [t.height ?? t.width ?? base, t.width ?? t.height ?? base];
  const limit = t.max_pixels ?? DEFAULT_MAX_PIXELS;
  if (height !== null && width !== null && height * width > limit) {
    problems.push(`teacher.height x teacher.width: ${height} x ${width} is ${height * width} pixels, more than teacher.max_pixels (${limit}); allowed: each side ${MIN_SIDE}-${MAX_SIDE} pixels and height x width <= ${limit}`);
  }
  if (t.mode === 'prompt-pair' && edit && t.strength === null) {
    problems.push('teacher.edit_model: mode "prompt-pair" without strength draws both images from teacher.model; set strength to SDEdit with the edit model, or remove edit_model');
  }
  return problems;
}

/**
 * The output size: height and width as configured (one given → square), else the UNet's sample_size
 * times the VAE scale factor. Call after modeProblems found nothing.
 */
export function outputSize(t: TeacherConfig, source: ModelFacts): { height: number; width: number } {
  const base = source.sampleSize !== null && source.scaleFactor !== null ? source.sampleSize * source.scaleFactor : null;
  return { height: (t.height ?? t.width ?? base)!, width: (t.width ?? t.height ?? base)! };
}

/** `sample_size` of a parsed unet/config.json, null when it has none. */
export function sampleSizeOf(unetConfig: Record<string, unknown> | null): number | null {
  return typeof unetConfig?.sample_size === 'number' ? unetConfig.sample_size : null;
}
