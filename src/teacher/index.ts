import { basename } from 'node:path';
import { UserError } from '../errors.ts';
import { digestFiles } from '../util/digest.ts';
import type { RuntimeConfig } from '../onnx/session.ts';
import type { CandidateSpec, GeneratedPair, LabellerHook, StageInfo, Teacher } from '../types.ts';
import { startTsWorker } from '../util/worker.ts';
import type { TeacherConfig } from './config.ts';
import { modelFiles, teacherFolders, TEACHER_SESSION_MEMORY } from './model.ts';
import { log } from '../util/log.ts';
import { teacherBatchForBudget } from './memory.ts';
import { rssMb } from '../util/rss.ts';
import type { Reply } from './worker.ts';

export interface TeacherHooks {
  /** Label every pair inside the worker (the demo's ground truth, src/reference). */
  labeller?: LabellerHook | null;
}

/**
 * The teacher stage: a diffusers ONNX model folder (or two) sampling candidate pairs in a worker thread.
 *   const teacher = await createTeacher(config.teacher, config.runtime);
 *   const pairs = await teacher.generate(specs); // same specs → same bytes
 */
export async function createTeacher(config: TeacherConfig, runtime: RuntimeConfig & { max_memory?: string }, hooks: TeacherHooks = {}): Promise<Teacher> {
  const files = teacherModelFiles(config); // a missing file fails here, before a worker starts
  // So does a budget too small for one candidate, before gigabytes of weights load.
  const budgetBatch = runtime.max_memory ? teacherBatchForBudget(config, runtime.max_memory) : null;
  const started = performance.now();
  const worker = startTsWorker(new URL('./worker.ts', import.meta.url), { config, runtime, labeller: hooks.labeller ?? null, budgetBatch });
  const pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  let nextId = 0;
  let dead: Error | null = null;

  const ready = new Promise<Extract<Reply, { type: 'ready' }>['describe']>((resolve, reject) => {
    pending.set(-1, { resolve: resolve as (v: unknown) => void, reject });
  });
  worker.on('message', (r: Reply) => {
    const id = r.type === 'ready' ? -1 : r.id;
    const p = pending.get(id);
    if (!p) return;
    pending.delete(id);
    if (r.type === 'ready') p.resolve(r.describe);
    else if (r.type === 'result') p.resolve(r.pairs);
    else p.reject(r.user ? new UserError(r.message) : Object.assign(new Error(r.message), { stack: r.stack }));
  });
  const fail = (e: Error) => {
    dead = e;
    for (const p of pending.values()) p.reject(e);
    pending.clear();
  };
  worker.on('error', fail);
  worker.on('exit', (code) => fail(new Error(`teacher worker exited (code ${code})`)));

  const call = (req: { type: 'generate'; specs: CandidateSpec[] } | { type: 'close' }): Promise<unknown> => {
    if (dead) return Promise.reject(dead);
    const id = nextId++;
    return new Promise((resolve, reject) => {
      pending.set(id, { resolve, reject });
      worker.postMessage({ ...req, id });
    });
  };

  let described;
  try {
    described = await ready;
  } catch (e) {
    await worker.terminate();
    throw e;
  }
  // The memory settings of this process's sessions (one copy of each model, in the worker thread).
  log.info(`teacher loaded in ${((performance.now() - started) / 1000).toFixed(1)} s`, {
    rss_mb: rssMb(), batch: described.batch ?? config.max_batch, cpu_mem_arena: TEACHER_SESSION_MEMORY.cpu_mem_arena, mem_pattern: TEACHER_SESSION_MEMORY.mem_pattern,
  });
  const info: StageInfo = {
    name: teacherName(config),
    modelDigest: (await digestFiles(files)).digest,
    settings: { ...teacherSettings(config), ...described },
  };
  return {
    info,
    generate: (specs: CandidateSpec[]) => call({ type: 'generate', specs }) as Promise<GeneratedPair[]>,
    close: async () => {
      if (!dead) await call({ type: 'close' }).catch(() => undefined);
      await worker.terminate();
    },
  };
}

/** Every model file the teacher reads, absolute, in a stable order (the model digest's input). */
export function teacherModelFiles(config: TeacherConfig): string[] {
  return teacherFolders(config).flatMap((f) => modelFiles(f.dir, f.parts));
}

function teacherName(config: TeacherConfig): string {
  const edit = config.edit_model && config.edit_model !== config.model ? `+${basename(config.edit_model)}` : '';
  return `diffusers:${basename(config.model)}${edit}`;
}

/** Every setting that changes the output (the model files are covered by the digest). */
function teacherSettings(config: TeacherConfig): Record<string, unknown> {
  const { kind: _kind, model: _model, edit_model: _edit, sources, ...rest } = config;
  return { ...rest, sources: sources ? { path: basename(sources.path), column: sources.column } : null };
}
