/** The engines `pairgen emit` writes launch files for; apart from emit.ts so the CLI can list them without loading it. */
export const ENGINES = ['k8s', 'slurm', 'batch'] as const;
export type Engine = (typeof ENGINES)[number];
