import { UserError } from '../errors.ts';
import { loadPipelineConfig, type PipelineConfig } from '../config/index.ts';
import { DEFAULT_RUNTIME, type RuntimeConfig } from '../onnx/session.ts';
import { DEFAULT_IDENTITY, type IdentityConfig } from '../identity/config.ts';

/** The identity section and runtime for the face CLI verbs: from a pipeline config when given, else the defaults. */
export function identitySettings(configFile: string | undefined, sets: string[] = []): { identity: IdentityConfig; runtime: RuntimeConfig; config?: PipelineConfig } {
  if (!configFile) {
    if (sets.length > 0) throw new UserError('--set needs --config <pipeline.yaml>');
    return { identity: structuredClone(DEFAULT_IDENTITY), runtime: DEFAULT_RUNTIME };
  }
  const { config } = loadPipelineConfig(configFile, sets);
  return { identity: config.identity, runtime: config.runtime, config };
}
