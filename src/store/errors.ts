/** `get` of a key that does not exist. Not a UserError: callers decide whether a missing object is a mistake. */
export class NotFoundError extends Error {
  readonly uri: string;
  readonly key: string;
  constructor(uri: string, key: string) {
    super(`no object '${key}' in ${uri}`);
    this.name = 'NotFoundError';
    this.uri = uri;
    this.key = key;
  }
}
