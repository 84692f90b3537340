// Owned by the identity work (issue 4); this first version only fixes the contract the spine relies on.
/** The `identity` section of a pipeline config. */
export interface IdentityConfig {
  /** false: every generated pair is kept and no face scores are recorded. */
  enabled: boolean;
  /** Minimum cosine similarity between the source and edited face embeddings. */
  threshold: number;
}

export const identityConfigSchema = {
  type: 'object',
  additionalProperties: false,
  description: 'The identity filter: face detection, alignment, embedding and the rules that keep or reject a pair.',
  properties: {
    enabled: { type: 'boolean', default: true, description: 'Score and filter pairs by face identity.' },
    threshold: { type: 'number', minimum: -1, maximum: 1, default: 0.6, description: 'Global cosine-similarity threshold; a prompt-set category may set its own.' },
  },
} as const;
