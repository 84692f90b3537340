/**
 * An error the user can cause and fix (bad config, missing file, unreachable store...).
 * The CLI prints its message alone, without a stack, and exits with code 2.
 * Anything else that escapes is a bug and is printed with its stack.
 */
export class UserError extends Error {
  readonly exitCode = 2;
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'UserError';
  }
}

export function isUserError(e: unknown): e is UserError {
  return e instanceof UserError;
}
