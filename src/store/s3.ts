import type { S3Client } from '@aws-sdk/client-s3';
import type { Readable } from 'node:stream';
import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { UserError } from '../errors.ts';
import { log } from '../util/log.ts';
import { CREDENTIALS_REFUSED, hasCredentials, redactUrl, type StorageConfig } from './config.ts';
import { NotFoundError } from './errors.ts';
import { checkKey, checkPrefix, checkRange } from './keys.ts';
import { backoffDelay, JitterRetryStrategy, type RetryPolicy } from './retry.ts';
import type { ConditionalWrites, PutIfAbsentResult, Store, StoreEntry } from './types.ts';

/** Knobs that are not pipeline keys: tests use them to keep runs short, benchmarks to vary them. */
export interface S3Tuning {
  /** First backoff step (ms); default 100. */
  retryBaseDelayMs?: number;
  /** Longest single backoff wait (ms); default 20,000. */
  retryMaxDelayMs?: number;
  /** ListObjectsV2 MaxKeys; default 1000 (the S3 maximum). */
  listPageSize?: number;
  /** TCP connect timeout (ms); default 10,000. */
  connectionTimeoutMs?: number;
  /** A request whose socket stays idle this long (ms) fails with TimeoutError and is retried; default 120,000. */
  socketTimeoutMs?: number;
}

/** Where each S3 setting came from, so errors can say what to change. Never holds credentials. */
export interface S3Settings {
  bucket: string;
  prefix: string;
  endpoint: string | undefined;
  endpointSource: string;
  region: string | undefined;
  regionSource: string;
  forcePathStyle: boolean;
  forcePathStyleSource: string;
}

const MIN_PART_BYTES = 5 * 1024 * 1024;
/** The conditional-write probe's throw-away objects carry this; list() never shows them. */
const PROBE_MARK = '.pairgen-probe-';

/** s3://bucket/some/prefix → bucket and "some/prefix/" (or ""). */
export function parseS3Uri(uri: string): { bucket: string; prefix: string } {
  const m = /^s3:\/\/([^/]*)(?:\/(.*))?$/i.exec(uri);
  const bucket = m?.[1] ?? '';
  const shown = redactUrl(uri);
  // A secret may hold '/', so KEY:SE/CRET@bucket parses as bucket "KEY:SE": an '@' with a bad bucket is credentials too.
  if (bucket.includes('@') || (uri.includes('@') && !/^[A-Za-z0-9._-]{3,255}$/.test(bucket))) {
    throw new UserError(`storage URI ${shown}: ${CREDENTIALS_REFUSED}`);
  }
  if (!/^[A-Za-z0-9._-]{3,255}$/.test(bucket)) {
    throw new UserError(`storage URI ${shown}: expected s3://BUCKET/PREFIX with a bucket name of 3-63 letters, digits, '.', '-' (got '${bucket}')`);
  }
  const path = (m?.[2] ?? '').replace(/^\/+|\/+$/g, '');
  if (path !== '' && path.split('/').some((s) => s === '' || s === '.' || s === '..')) {
    throw new UserError(`storage URI ${shown}: the prefix after the bucket must be '/'-separated names without empty, '.' or '..' parts`);
  }
  return { bucket, prefix: path === '' ? '' : path + '/' };
}

/** Settings from the pipeline config first, then the standard AWS environment. */
export function resolveS3Settings(uri: string, config: Partial<StorageConfig>, env: NodeJS.ProcessEnv = process.env): S3Settings {
  const { bucket, prefix } = parseS3Uri(uri);
  const pick = (candidates: [string | null | undefined, string][]): [string | undefined, string] => {
    for (const [value, source] of candidates) if (value) return [value, source];
    return [undefined, ''];
  };
  let [endpoint, endpointSource] = pick([
    [config.endpoint, 'storage.endpoint'],
    [env.AWS_ENDPOINT_URL_S3, 'AWS_ENDPOINT_URL_S3'],
    [env.AWS_ENDPOINT_URL, 'AWS_ENDPOINT_URL'],
  ]);
  // Checked here too (not only at config load): the variables, and a run.json written before the check.
  if (endpoint !== undefined && hasCredentials(endpoint)) throw new UserError(`${endpointSource}: ${CREDENTIALS_REFUSED}`);
  if (endpoint !== undefined && !/^https?:\/\/[^/\s]+/i.test(endpoint)) {
    throw new UserError(`${endpointSource} '${redactUrl(endpoint)}' (for ${uri}): expected an http:// or https:// URL such as http://127.0.0.1:9000`);
  }
  endpointSource ||= 'the AWS default for the region';
  let [region, regionSource] = pick([
    [config.region, 'storage.region'],
    [env.AWS_REGION, 'AWS_REGION'],
    [env.AWS_DEFAULT_REGION, 'AWS_DEFAULT_REGION'],
  ]);
  regionSource ||= 'the AWS config file, else us-east-1';
  const envPathStyle = env.AWS_S3_FORCE_PATH_STYLE;
  const [forcePathStyle, forcePathStyleSource] =
    config.force_path_style != null ? [config.force_path_style, 'storage.force_path_style']
    : envPathStyle ? [envPathStyle.toLowerCase() === 'true', 'AWS_S3_FORCE_PATH_STYLE']
    : [false, 'default'];
  return { bucket, prefix, endpoint, endpointSource, region, regionSource, forcePathStyle, forcePathStyleSource };
}

/** One line for logs: where the data goes and through which endpoint. No secrets. */
export function describeS3(s: S3Settings): string {
  const root = `s3://${s.bucket}/${s.prefix}`.replace(/\/$/, '');
  const endpoint = s.endpoint ? `${redactUrl(s.endpoint)} (from ${s.endpointSource})` : 'AWS S3';
  return `${root} via ${endpoint}, region ${s.region ?? 'from ' + s.regionSource}, ${s.forcePathStyle ? 'path-style' : 'virtual-hosted'} addressing`;
}

/** The SDK's classes pairgen uses. */
type Sdk = typeof import('@aws-sdk/client-s3') & Pick<typeof import('@aws-sdk/lib-storage'), 'Upload'> & Pick<typeof import('@smithy/node-http-handler'), 'NodeHttpHandler'>;

/** The AWS SDK is imported on a store's first request, so a process that only opens local folders never pays for loading it. */
const loadSdk = once(async (): Promise<Sdk> => {
  const [s3, { Upload }, { NodeHttpHandler }] = await Promise.all([import('@aws-sdk/client-s3'), import('@aws-sdk/lib-storage'), import('@smithy/node-http-handler')]);
  return { ...s3, Upload, NodeHttpHandler };
});

/** State shared by a store and all its children: one client (made on the first request), one connection pool. */
interface Shared {
  connect: () => Promise<{ client: S3Client; sdk: Sdk }>;
  settings: S3Settings;
  policy: RetryPolicy;
  partBytes: number;
  multipartThresholdBytes: number;
  listPageSize: number;
  bucketChecked: Promise<void> | null;
  conditionalWrites: StorageConfig['conditional_writes'];
  /** auto: the answer of the one probe this client makes (see probeConditionalWrites). */
  conditionalProbe: Promise<ConditionalWrites> | null;
}

export function openS3Store(uri: string, config: Partial<StorageConfig>, tuning: S3Tuning = {}): Store {
  const settings = resolveS3Settings(uri, config);
  const policy: RetryPolicy = {
    maxAttempts: config.max_attempts ?? 8,
    baseDelayMs: tuning.retryBaseDelayMs ?? 100,
    maxDelayMs: tuning.retryMaxDelayMs ?? 20_000,
  };
  const thresholdBytes = Math.round((config.multipart_threshold_mb ?? 16) * 1024 * 1024);
  const connect = once(async () => {
    const sdk = await loadSdk();
    const client = new sdk.S3Client({
      endpoint: settings.endpoint,
      region: settings.region ?? once(regionFromConfigFiles),
      forcePathStyle: settings.forcePathStyle,
      maxAttempts: policy.maxAttempts,
      retryStrategy: new JitterRetryStrategy(policy),
      requestHandler: new sdk.NodeHttpHandler({
        connectionTimeout: tuning.connectionTimeoutMs ?? 10_000,
        socketTimeout: tuning.socketTimeoutMs ?? 120_000,
      }),
    });
    return { client, sdk };
  });
  const shared: Shared = {
    connect,
    settings,
    policy,
    multipartThresholdBytes: thresholdBytes,
    partBytes: Math.max(MIN_PART_BYTES, thresholdBytes),
    listPageSize: tuning.listPageSize ?? 1000,
    bucketChecked: null,
    conditionalWrites: config.conditional_writes ?? 'auto',
    conditionalProbe: null,
  };
  return new S3Store(shared, settings.prefix);
}

function once<T>(fn: () => Promise<T>): () => Promise<T> {
  let p: Promise<T> | undefined;
  return () => (p ??= fn());
}

/** The region from ~/.aws/config (AWS_PROFILE aware), read by the SDK's own loader; else us-east-1. */
async function regionFromConfigFiles(): Promise<string> {
  const { S3Client } = await loadSdk();
  const probe = new S3Client({});
  try {
    return await probe.config.region();
  } catch {
    return 'us-east-1';
  } finally {
    probe.destroy();
  }
}

class S3Store implements Store {
  readonly uri: string;
  constructor(private readonly s: Shared, private readonly root: string) {
    this.uri = `s3://${s.settings.bucket}/${root}`.replace(/\/$/, '');
  }

  private params(key: string) {
    return { Bucket: this.s.settings.bucket, Key: this.root + checkKey(key) };
  }

  async put(key: string, body: Uint8Array | string, options: { contentType?: string } = {}): Promise<void> {
    const bytes = typeof body === 'string' ? Buffer.from(body) : body;
    if (bytes.byteLength > this.s.multipartThresholdBytes) {
      await this.upload(key, bytes, options.contentType);
      return;
    }
    const { client, sdk } = await this.s.connect();
    await this.call('write', key, () =>
      client.send(new sdk.PutObjectCommand({ ...this.params(key), Body: bytes, ContentLength: bytes.byteLength, ContentType: options.contentType })),
    );
  }

  async putIfAbsent(key: string, body: Uint8Array | string, options: { contentType?: string } = {}): Promise<PutIfAbsentResult> {
    const bytes = typeof body === 'string' ? Buffer.from(body) : body;
    if ((await this.conditionalWrites()) === 'atomic') return this.putIfNoneMatch(key, bytes, options.contentType);
    if ((await this.head(key)) !== null) return 'exists';
    await this.put(key, bytes, options);
    return 'written';
  }

  async conditionalWrites(): Promise<ConditionalWrites> {
    switch (this.s.conditionalWrites) {
      case 'on':
        return 'atomic';
      case 'off':
        return 'check-then-put';
      default:
        this.s.conditionalProbe ??= this.probeConditionalWrites().catch((e) => {
          this.s.conditionalProbe = null;
          throw e;
        });
        return this.s.conditionalProbe;
    }
  }

  /**
   * PutObject with If-None-Match: * (AWS S3 since 2024, MinIO, R2, ...): 412 PreconditionFailed means the
   * key exists. 409 ConditionalRequestConflict (a racing write in flight) is retried. After a lost answer
   * the SDK's retry may meet our own first write and get 412, so 'exists' can mean "written by this call".
   */
  private async putIfNoneMatch(key: string, bytes: Uint8Array, contentType: string | undefined): Promise<PutIfAbsentResult> {
    const { client, sdk } = await this.s.connect();
    for (let attempt = 1; ; attempt++) {
      const outcome = await this.call('write', key, () =>
        client
          .send(new sdk.PutObjectCommand({ ...this.params(key), Body: bytes, ContentLength: bytes.byteLength, ContentType: contentType, IfNoneMatch: '*' }))
          .then(
            () => 'written' as const,
            (e: SdkError) => {
              const status = e.$metadata?.httpStatusCode;
              if (status === 412 || e.name === 'PreconditionFailed') return 'exists' as const;
              if (status === 409 && attempt < this.s.policy.maxAttempts) return 'conflict' as const;
              throw e;
            },
          ),
      );
      if (outcome !== 'conflict') return outcome;
      await sleep(backoffDelay(this.s.policy, attempt));
    }
  }

  /**
   * Whether the server honours If-None-Match on PUT. Some S3-compatible servers (s3rver among them)
   * ignore the header and overwrite, which only a write can reveal: put a probe object, put it again
   * conditionally (412 = honoured; 200 = ignored; 501 or 400 = not implemented), delete it.
   */
  private async probeConditionalWrites(): Promise<ConditionalWrites> {
    const key = `${PROBE_MARK}${process.pid}-${randomBytes(6).toString('hex')}`;
    await this.put(key, 'probe');
    try {
      const second = await this.putIfNoneMatch(key, Buffer.from('probe'), undefined).catch((e: Error) => {
        const status = ((e.cause ?? e) as SdkError).$metadata?.httpStatusCode;
        if (status === 501 || status === 400) return 'written' as const;
        throw e;
      });
      return second === 'exists' ? 'atomic' : 'check-then-put';
    } finally {
      await this.delete(key).catch(() => {});
    }
  }

  async putStream(key: string, body: Readable, options: { contentType?: string } = {}): Promise<void> {
    await this.upload(key, body, options.contentType);
  }

  /**
   * lib-storage sends one PutObject when the body fits one part, else a multipart upload. On failure we
   * abort the multipart upload ourselves (leavePartsOnError) so that a failed abort cannot hide the
   * error that caused it; the parts of an upload never completed are never visible as an object.
   */
  private async upload(key: string, body: Uint8Array | Readable, contentType: string | undefined): Promise<void> {
    const { client, sdk } = await this.s.connect();
    const upload = new sdk.Upload({
      client,
      params: { ...this.params(key), Body: body, ContentType: contentType },
      partSize: this.s.partBytes,
      queueSize: 4,
      leavePartsOnError: true,
    });
    try {
      await this.call('write', key, () => upload.done());
    } catch (e) {
      if (upload.uploadId) {
        const abort = new sdk.AbortMultipartUploadCommand({ ...this.params(key), UploadId: upload.uploadId });
        await client.send(abort).catch((abortError: Error) => {
          log.warn(`${this.uri}: could not abort the failed multipart upload of '${key}'; its parts stay billed until a lifecycle rule (AbortIncompleteMultipartUpload) removes them`, { error: abortError.name });
        });
      }
      throw e;
    }
  }

  async get(key: string): Promise<Uint8Array> {
    const body = await this.getIfExists(key);
    if (body === null) throw new NotFoundError(this.uri, key);
    return body;
  }

  /**
   * The SDK retries the request; a body that breaks off or is shorter than Content-Length arrives
   * after the SDK has returned, so reading it is retried here, with the same policy.
   */
  async getIfExists(key: string): Promise<Uint8Array | null> {
    const { client, sdk } = await this.s.connect();
    for (let attempt = 1; ; attempt++) {
      let response;
      try {
        response = await this.call('read', key, () => client.send(new sdk.GetObjectCommand(this.params(key))));
      } catch (e) {
        if (e instanceof NotFoundError) return null;
        throw e;
      }
      try {
        if (!response.Body) throw new Error('response has no body');
        const bytes = await response.Body.transformToByteArray();
        if (response.ContentLength !== undefined && bytes.byteLength !== response.ContentLength) {
          throw new Error(`truncated body: received ${bytes.byteLength} of ${response.ContentLength} bytes`);
        }
        return bytes;
      } catch (e) {
        if (attempt >= this.s.policy.maxAttempts) {
          throw new Error(`${this.uri}: reading '${key}' failed after ${attempt} attempts: ${(e as Error).message}`, { cause: e });
        }
        await sleep(backoffDelay(this.s.policy, attempt));
      }
    }
  }

  /** A ranged GET; a body that breaks off or comes short is read again, like getIfExists. */
  async getRange(key: string, start: number, end: number): Promise<Uint8Array> {
    checkRange(start, end);
    const { client, sdk } = await this.s.connect();
    for (let attempt = 1; ; attempt++) {
      const response = await this.call('read', key, () => client.send(new sdk.GetObjectCommand({ ...this.params(key), Range: `bytes=${start}-${end - 1}` })));
      try {
        if (!response.Body) throw new Error('response has no body');
        const bytes = await response.Body.transformToByteArray();
        if (bytes.byteLength !== end - start) throw new Error(`short range: received ${bytes.byteLength} of ${end - start} bytes`);
        return bytes;
      } catch (e) {
        if (attempt >= this.s.policy.maxAttempts) {
          throw new Error(`${this.uri}: reading bytes ${start}-${end} of '${key}' failed after ${attempt} attempts: ${(e as Error).message}`, { cause: e });
        }
        await sleep(backoffDelay(this.s.policy, attempt));
      }
    }
  }

  async head(key: string): Promise<{ size: number } | null> {
    const { client, sdk } = await this.s.connect();
    try {
      const r = await this.call('read', key, () => client.send(new sdk.HeadObjectCommand(this.params(key))));
      return { size: r.ContentLength ?? 0 };
    } catch (e) {
      if (e instanceof NotFoundError) return null;
      throw e;
    }
  }

  async *list(prefix: string): AsyncIterable<StoreEntry> {
    checkPrefix(prefix);
    const { client, sdk } = await this.s.connect();
    let token: string | undefined;
    do {
      const page = await this.call('list', prefix, () =>
        client.send(
          new sdk.ListObjectsV2Command({ Bucket: this.s.settings.bucket, Prefix: this.root + prefix, ContinuationToken: token, MaxKeys: this.s.listPageSize }),
        ),
      );
      for (const o of page.Contents ?? []) {
        // Keys ending in '/' are folder placeholders made by consoles, not objects.
        if (o.Key && !o.Key.endsWith('/') && !o.Key.includes(PROBE_MARK)) yield { key: o.Key.slice(this.root.length), size: o.Size ?? 0, etag: o.ETag };
      }
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
  }

  async delete(key: string): Promise<void> {
    const { client, sdk } = await this.s.connect();
    try {
      await this.call('delete', key, () => client.send(new sdk.DeleteObjectCommand(this.params(key))));
    } catch (e) {
      if (!(e instanceof NotFoundError)) throw e;
    }
  }

  child(prefix: string): Store {
    return new S3Store(this.s, this.root + checkKey(prefix.replace(/\/+$/, '')) + '/');
  }

  /** Run one SDK operation; turn what the user can fix into a UserError and a missing key into NotFoundError. */
  private async call<T>(op: 'read' | 'write' | 'list' | 'delete', key: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (e) {
      const err = e as SdkError;
      const name = err.Code ?? err.name ?? '';
      if (name === 'NoSuchKey') throw new NotFoundError(this.uri, key);
      if (err.$metadata?.httpStatusCode === 404 && name !== 'NoSuchBucket') {
        // HEAD answers a missing bucket with a bare 404: check the bucket once before calling the key missing.
        await this.checkBucket();
        throw new NotFoundError(this.uri, key);
      }
      throw this.explain(e, op, key);
    }
  }

  private checkBucket(): Promise<void> {
    this.s.bucketChecked ??= this.s.connect().then(({ client, sdk }) => client.send(new sdk.HeadBucketCommand({ Bucket: this.s.settings.bucket }))).then(
      () => {},
      (e: SdkError) => {
        this.s.bucketChecked = null;
        const missing = e.$metadata?.httpStatusCode === 404;
        throw this.explain(missing ? Object.assign(new Error('no such bucket'), { name: 'NoSuchBucket' }) : e, 'list', '');
      },
    );
    return this.s.bucketChecked;
  }

  private explain(e: unknown, op: string, key: string): Error {
    const s = this.s.settings;
    const err = e as SdkError;
    const name = err.Code ?? err.name ?? '';
    const status = err.$metadata?.httpStatusCode;
    const attempts = err.$metadata?.attempts ?? 1;
    const where = s.endpoint ? `${redactUrl(s.endpoint)} (from ${s.endpointSource})` : `AWS S3 (region from ${s.regionSource})`;
    const what = `${op} '${key}'`;
    const credentialsHint = 'Check AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY (or AWS_PROFILE and ~/.aws/credentials)';
    switch (name) {
      case 'InvalidAccessKeyId':
        return new UserError(`${this.uri}: ${where} does not know the access key (InvalidAccessKeyId) on ${what}. ${credentialsHint}.`, { cause: e });
      case 'SignatureDoesNotMatch':
        return new UserError(`${this.uri}: ${where} rejected the request signature (SignatureDoesNotMatch) on ${what}: the secret key does not match the access key. ${credentialsHint}.`, { cause: e });
      case 'AccessDenied':
      case 'InvalidToken':
      case 'ExpiredToken':
        return new UserError(`${this.uri}: access denied by ${where} (${name}) on ${what}. ${credentialsHint}, and that they may ${op} in bucket '${s.bucket}'.`, { cause: e });
      case 'CredentialsProviderError':
        return new UserError(`${this.uri}: no AWS credentials found. Set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE with a profile in ~/.aws/credentials.`, { cause: e });
      case 'NoSuchBucket':
        return new UserError(`${this.uri}: bucket '${s.bucket}' does not exist at ${where}. Create it, or fix the bucket name in the URI.`, { cause: e });
      case 'PermanentRedirect':
      case 'AuthorizationHeaderMalformed':
      case 'IllegalLocationConstraintException':
        return new UserError(`${this.uri}: bucket '${s.bucket}' is not in region ${s.region ?? '(' + s.regionSource + ')'} (${name}). Set storage.region or AWS_REGION to the bucket's region.`, { cause: e });
    }
    if (status === 403) {
      // A HEAD answer has no body, so no error code: only the status says what happened.
      return new UserError(`${this.uri}: access denied by ${where} (HTTP 403) on ${what}. ${credentialsHint}, and that they may ${op} in bucket '${s.bucket}'.`, { cause: e });
    }
    if (status === 301) {
      return new UserError(`${this.uri}: bucket '${s.bucket}' is not in region ${s.region ?? '(' + s.regionSource + ')'} (HTTP 301). Set storage.region or AWS_REGION to the bucket's region.`, { cause: e });
    }
    const network = networkCode(err);
    if (network && status === undefined) {
      return new UserError(`${this.uri}: cannot reach the S3 endpoint ${where}: ${network} after ${attempts} attempt(s) on ${what}. Check the endpoint URL, the network, and that the server is running.`, { cause: e });
    }
    if (status !== undefined && (status >= 500 || status === 429)) {
      return new Error(`${this.uri}: ${what} failed after ${attempts} attempts: HTTP ${status} ${name} from ${where}. The service is overloaded or failing; try later or raise storage.max_attempts.`, { cause: e });
    }
    return new Error(`${this.uri}: ${what} failed: ${status ? `HTTP ${status} ` : ''}${name}: ${err.message ?? String(e)}`, { cause: e });
  }
}

/** The fields of SDK (and Node network) errors that we read. */
interface SdkError {
  name?: string;
  Code?: string;
  code?: string;
  message?: string;
  $metadata?: { httpStatusCode?: number; attempts?: number };
  errors?: { code?: string }[];
}

const NETWORK_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ENOTFOUND', 'EAI_AGAIN', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'EPIPE', 'TimeoutError']);

function networkCode(err: SdkError): string | undefined {
  const codes = [err.code, err.name, ...(err.errors ?? []).map((x) => x.code)];
  return codes.find((c): c is string => c !== undefined && NETWORK_CODES.has(c));
}
