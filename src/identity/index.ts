/**
 * The identity stage: find faces, align them, embed them and measure how alike the source's and the
 * edited image's faces are (the verdict is src/candidates/verdict.ts's). The worker uses
 * createIdentityScorer; the CLI uses the lower parts too; check.ts checks the identity config.
 */
export { createIdentityScorer } from './scorer.ts';
export { identityModelFiles } from './models.ts';
export type { IdentityConfig } from './config.ts';
