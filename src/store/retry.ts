/**
 * Retry policy for S3 requests: exponential backoff with full jitter (AWS Architecture Blog,
 * "Exponential Backoff and Jitter"): before retry n (1-based) wait random(0, min(cap, base * 2^n)) ms.
 *
 * The AWS SDK decides *which* errors are retryable (its classifier knows S3's throttling codes such as
 * 503 SlowDown, 429, 5xx, and Node network errors such as ECONNRESET / ECONNREFUSED / timeouts); this
 * module decides *how long* to wait and *how often*, through the SDK's RetryStrategyV2 hook, so every
 * HTTP request the SDK sends (including each part of a multipart upload) follows the same policy.
 * Unlike the SDK's standard strategy there is no shared retry quota: a batch worker facing a
 * throttling bucket should keep backing off up to max_attempts rather than fail fast.
 */
export interface RetryPolicy {
  maxAttempts: number;
  baseDelayMs: number;
  maxDelayMs: number;
}

export function backoffDelay(policy: RetryPolicy, retry: number): number {
  return Math.floor(Math.random() * Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** retry));
}

/** The SDK's retry error classes (RetryErrorInfo.errorType in @smithy/types). */
type RetryErrorType = 'THROTTLING' | 'TRANSIENT' | 'SERVER_ERROR' | 'CLIENT_ERROR';

interface Token {
  getRetryCount(): number;
  getRetryDelay(): number;
  getRetryTokenCount?(): number;
}

/** A RetryStrategyV2 for S3Client's `retryStrategy` option. */
export class JitterRetryStrategy {
  readonly mode = 'standard';
  /** Retries made by this strategy so far (all requests of one client); useful in logs and tests. */
  retries = 0;
  constructor(private readonly policy: RetryPolicy) {}

  async acquireInitialRetryToken(_scope: string): Promise<Token> {
    return token(0, 0);
  }

  async refreshRetryTokenForRetry(previous: Token, info: { errorType: RetryErrorType; error?: unknown }): Promise<Token> {
    const count = previous.getRetryCount() + 1;
    if (info.errorType === 'CLIENT_ERROR' || count >= this.policy.maxAttempts) throw new Error('no more retries');
    this.retries++;
    return token(count, backoffDelay(this.policy, count));
  }

  recordSuccess(_token: Token): void {}
}

function token(count: number, delay: number): Token {
  return { getRetryCount: () => count, getRetryDelay: () => delay, getRetryTokenCount: () => 0 };
}
