/** The `storage` section of a pipeline config: settings for s3:// URIs (each falls back to the AWS environment). */
export interface StorageConfig {
  endpoint: string | null;
  region: string | null;
  force_path_style: boolean | null;
  max_attempts: number;
  multipart_threshold_mb: number;
}

export const storageConfigSchema = {
  type: 'object',
  additionalProperties: false,
  description: 'Object storage settings used when an output URI is s3://bucket/prefix. Credentials always come from the standard AWS environment / config files, never from the pipeline config.',
  properties: {
    endpoint: { type: ['string', 'null'], default: null, description: 'S3 endpoint URL (e.g. http://127.0.0.1:9000 for MinIO). Default: AWS_ENDPOINT_URL_S3, then AWS_ENDPOINT_URL, then AWS.' },
    region: { type: ['string', 'null'], default: null, description: 'Region. Default: AWS_REGION / AWS_DEFAULT_REGION / the AWS config file, then us-east-1.' },
    force_path_style: { type: ['boolean', 'null'], default: null, description: 'Path-style addressing (bucket in the path). Default: AWS_S3_FORCE_PATH_STYLE=true, else virtual-hosted style.' },
    max_attempts: { type: 'integer', minimum: 1, maximum: 20, default: 8, description: 'Attempts per request on throttling, 5xx and network errors (exponential backoff with full jitter).' },
    multipart_threshold_mb: { type: 'number', exclusiveMinimum: 0, default: 16, description: 'Objects larger than this are uploaded in parts.' },
  },
} as const;
