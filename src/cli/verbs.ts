import type { VerbRegistrar } from './common.ts';
import { registerQuery } from './query.ts';
import { registerRefilter } from './refilter.ts';
import { registerRegenerate } from './regenerate.ts';
import { registerReport } from './report.ts';
import { registerExport } from './export.ts';
import { registerExpand } from './expand.ts';
import { registerRunVerbs } from './run.ts';
import { registerSample } from './sample.ts';
import { registerFaces } from './faces.ts';
import { registerIdentity } from './identity.ts';
import { registerPreview } from './preview.ts';
import { registerCheck } from './check.ts';
import { registerEmit } from './emit.ts';
import { registerUpgrade } from './upgrade.ts';

/** Every verb of the CLI, in the order `pairgen --help` lists them. */
export const VERBS: VerbRegistrar[] = [
  registerExpand,
  registerRunVerbs, // plan, work, run, status, finalize
  registerSample,
  registerFaces,
  registerIdentity,
  registerCheck,
  registerPreview,
  registerQuery,
  registerRefilter,
  registerRegenerate,
  registerReport,
  registerExport,
  registerEmit,
  registerUpgrade,
];
