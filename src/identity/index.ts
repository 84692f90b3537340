/**
 * The identity stage: find faces, align them, embed them and judge whether the edited image still
 * shows the source's person. The worker uses createIdentityScorer; the CLI uses the lower parts too.
 */
export { createIdentityScorer } from './scorer.ts';
export { identityModelFiles } from './models.ts';
export type { IdentityConfig } from './config.ts';
