/**
 * The teacher of a run, as every path that draws a run's candidates (work, preview --regenerate,
 * refilter, regenerate) creates it: the run's teacher config and runtime, plus the demo's ground-truth
 * labeller when the model is a reference teacher. Imported on first use, so verbs that only read a
 * run never load onnxruntime.
 */
import type { RunPlan } from '../dataset/run-file.ts';
import type { Teacher } from '../types.ts';

export async function runTeacher(plan: RunPlan): Promise<Teacher> {
  const { createTeacher } = await import('../teacher/index.ts');
  const { referenceLabeller } = await import('../reference/truth.ts');
  return createTeacher(plan.config.teacher, plan.config.runtime, { labeller: referenceLabeller(plan.config.teacher) });
}
