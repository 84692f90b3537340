import * as ort from 'onnxruntime-node';
import { existsSync } from 'node:fs';
import { UserError } from '../errors.ts';
import { executionProviders, probeProviders } from './providers.ts';

/** The `runtime` section of a pipeline config: where and how ONNX models run. */
export interface RuntimeConfig {
  /** onnxruntime execution providers in order of preference, e.g. ["cuda", "cpu"]. */
  execution_providers: string[];
  /** Threads inside one operator (0 = onnxruntime's default). Fix it for byte-identical output. */
  intra_op_threads: number;
  /** Threads across operators (0 = onnxruntime's default). */
  inter_op_threads: number;
  /** onnxruntime graph optimisation level. */
  graph_optimization: 'disabled' | 'basic' | 'extended' | 'all';
  /**
   * Memory settings a stage chooses for its sessions (not config keys; onnxruntime's default: on).
   * The CPU arena keeps each session's peak activations after a run; the memory pattern pre-plans them per shape.
   */
  cpu_mem_arena?: boolean;
  mem_pattern?: boolean;
}

export const DEFAULT_RUNTIME: RuntimeConfig = {
  execution_providers: ['cpu'],
  intra_op_threads: 1,
  inter_op_threads: 1,
  graph_optimization: 'all',
};

export function sessionOptions(runtime: RuntimeConfig = DEFAULT_RUNTIME): ort.InferenceSession.SessionOptions {
  const options: ort.InferenceSession.SessionOptions = {
    executionProviders: executionProviders(runtime.execution_providers),
    graphOptimizationLevel: runtime.graph_optimization,
  };
  if (runtime.intra_op_threads > 0) options.intraOpNumThreads = runtime.intra_op_threads;
  if (runtime.inter_op_threads > 0) options.interOpNumThreads = runtime.inter_op_threads;
  if (runtime.cpu_mem_arena !== undefined) options.enableCpuMemArena = runtime.cpu_mem_arena;
  if (runtime.mem_pattern !== undefined) options.enableMemPattern = runtime.mem_pattern;
  return options;
}

/** Open an ONNX model by path (external `.onnx_data` beside it is found by onnxruntime). */
export async function openSession(modelPath: string, runtime: RuntimeConfig = DEFAULT_RUNTIME): Promise<ort.InferenceSession> {
  if (!existsSync(modelPath)) throw new UserError(`ONNX model not found: ${modelPath}`);
  try {
    return await ort.InferenceSession.create(modelPath, sessionOptions(runtime));
  } catch (e) {
    const unloadable = runtime.execution_providers.some((p) => p !== 'cpu') ? (await probeProviders(runtime.execution_providers)).filter((s) => !s.loadable) : [];
    if (unloadable.length) throw new UserError(`cannot open ONNX model ${modelPath}: runtime.execution_providers: ${unloadable.map((s) => `${s.name}: ${s.problem}`).join('; ')}`, { cause: e });
    throw new UserError(`cannot load ONNX model ${modelPath}: ${(e as Error).message}`, { cause: e });
  }
}
