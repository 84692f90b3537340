import type { VerbRegistrar } from './common.ts';
import { registerQuery } from './query.ts';
import { registerServe } from './serve.ts';
import { registerRefilter } from './refilter.ts';
import { registerRegenerate } from './regenerate.ts';
import { registerReport } from './report.ts';
import { registerExport } from './export.ts';
import { registerExpand } from './expand.ts';
import { registerRunVerbs } from './run.ts';
import { registerSample } from './sample.ts';
import { registerFaces } from './faces.ts';
import { registerScore } from './score.ts';
import { registerIdentity } from './identity.ts';
import { registerPreview } from './preview.ts';
import { registerCheck } from './check.ts';
import { registerEmit } from './emit.ts';
import { registerUpgrade } from './upgrade.ts';

/**
 * Every verb of the CLI, in the order `pairgen --help` lists them. A verb file imports the code it runs
 * inside its action (`await import(...)`), and what it needs to register (option choices, limits) from
 * small constant modules, so --help and usage errors load none of the stages and a verb loads only its own
 * (each CLI start is paid again by every test and worker that spawns one).
 */
export const VERBS: VerbRegistrar[] = [
  registerExpand,
  registerRunVerbs, // plan, work, run, status, finalize
  registerSample,
  registerFaces,
  registerScore,
  registerIdentity,
  registerCheck,
  registerPreview,
  registerQuery,
  registerRefilter,
  registerRegenerate,
  registerReport,
  registerServe,
  registerExport,
  registerEmit,
  registerUpgrade,
];
