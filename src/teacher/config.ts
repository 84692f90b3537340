// Owned by the teacher work (issue 3); this first version only fixes the contract the spine relies on.
/** The `teacher` section of a pipeline config. */
export interface TeacherConfig {
  kind: 'diffusers';
  /** Absolute path of the diffusers/Optimum ONNX model folder (resolved against the config file's folder). */
  model: string;
  mode: 'prompt-pair' | 'instruct' | 'img2img';
}

export const teacherConfigSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['model'],
  description: 'The teacher diffusion model and its sampler settings.',
  properties: {
    kind: { enum: ['diffusers'], default: 'diffusers', description: 'diffusers: an ONNX export in the diffusers / Optimum folder layout.' },
    model: { type: 'string', 'x-path': true, description: 'Model folder (model_index.json, unet/, vae_decoder/, ...), relative to the config file.' },
    mode: { enum: ['prompt-pair', 'instruct', 'img2img'], default: 'prompt-pair', description: 'How a pair is made (see docs/config.md).' },
  },
} as const;
