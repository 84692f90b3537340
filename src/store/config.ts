import { UserError } from '../errors.ts';

/** The `storage` section of a pipeline config: settings for s3:// URIs (each falls back to the AWS environment). */
export interface StorageConfig {
  endpoint: string | null;
  region: string | null;
  force_path_style: boolean | null;
  max_attempts: number;
  multipart_threshold_mb: number;
  conditional_writes: 'auto' | 'on' | 'off';
}

export const storageConfigSchema = {
  type: 'object',
  additionalProperties: false,
  description: 'Object storage settings used when an output URI is s3://bucket/prefix. Credentials always come from the standard AWS environment / config files, never from the pipeline config.',
  properties: {
    endpoint: { type: ['string', 'null'], default: null, description: 'S3 endpoint URL (e.g. http://127.0.0.1:9000 for MinIO), without credentials (a URL with user:password@ is refused). Default: AWS_ENDPOINT_URL_S3, then AWS_ENDPOINT_URL, then AWS.' },
    region: { type: ['string', 'null'], default: null, description: 'Region. Default: AWS_REGION / AWS_DEFAULT_REGION / the AWS config file, then us-east-1.' },
    force_path_style: { type: ['boolean', 'null'], default: null, description: 'Path-style addressing (bucket in the path). Default: AWS_S3_FORCE_PATH_STYLE=true, else virtual-hosted style.' },
    max_attempts: { type: 'integer', minimum: 1, maximum: 20, default: 8, description: 'Attempts per request on throttling, 5xx and network errors (exponential backoff with full jitter).' },
    multipart_threshold_mb: { type: 'number', exclusiveMinimum: 0, default: 16, description: 'Objects larger than this are uploaded in parts.' },
    conditional_writes: {
      enum: ['auto', 'on', 'off'],
      default: 'auto',
      description: 'Write-if-absent (commit markers) on S3: on = PutObject with If-None-Match: * (the server must honour it); off = HEAD then PUT (safe when racing writers write identical bytes); auto = probe the server once, use If-None-Match when it is honoured, else HEAD then PUT. Local folders always link() atomically.',
    },
  },
} as const;

/**
 * Refuse what must never reach a log or run.json: credentials written into the endpoint URL.
 * Called when the pipeline config is loaded, before anything is printed or written.
 * `where` names the config (its file); the secret itself is never echoed.
 */
export function checkStorageConfig(storage: unknown, where: string): void {
  const endpoint = (storage as Partial<StorageConfig> | undefined)?.endpoint;
  if (typeof endpoint === 'string' && hasCredentials(endpoint)) {
    throw new UserError(`${where}: storage.endpoint: ${CREDENTIALS_REFUSED}`);
  }
}

export const CREDENTIALS_REFUSED = 'credentials in the URL are not allowed; use AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or a profile (AWS_PROFILE)';

/**
 * True when a URL may carry user[:password]@. An endpoint has no reason to hold an '@' anywhere, and a
 * secret may contain '/', '?' or '#' (which break URL parsing), so any '@' counts.
 */
export function hasCredentials(url: string): boolean {
  return url.includes('@');
}

/**
 * A URL or store URI safe to print: everything up to its last '@' becomes ***@ (user:password, even one
 * with '/', '?' or '#' in it, which no URL parser reads right) and a query string (which may hold a
 * presigned signature or token) becomes ?***. A plain path comes back unchanged.
 */
export function redactUrl(url: string): string {
  const m = /^([a-z][a-z0-9+.-]*:\/\/)(.*)$/is.exec(url);
  if (!m) return url;
  const rest = m[2].includes('@') ? '***@' + m[2].slice(m[2].lastIndexOf('@') + 1) : m[2];
  return m[1] + rest.replace(/\?[^#]*/, '?***');
}
