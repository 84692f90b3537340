/**
 * A real S3-compatible server (s3rver 3.7) on loopback for tests.
 *
 *   const s3 = await startS3Server();            // random free port, fresh temp directory, bucket "test"
 *   Object.assign(process.env, s3.env);          // or pass s3.env to a child process
 *   // or startS3Server({ processEnv: true }): s3.env is put in process.env, and stop() restores process.env
 *   const store = openStore(`s3://${s3.bucket}/run-a`);
 *   ...
 *   await s3.stop();                             // stops the server and deletes its directory
 *
 * `env` holds everything the AWS SDK needs: endpoint (AWS_ENDPOINT_URL_S3), region, path-style
 * addressing and the credentials s3rver accepts (S3RVER / S3RVER). Another access key id gets a real
 * 403 InvalidAccessKeyId; but s3rver does not verify SigV4 signatures, so a wrong *secret* is accepted.
 * Limits worth knowing: listings are not in byte order when a folder name is a prefix of a sibling key
 * ("a/x" is listed before "a-c"), and AbortMultipartUpload answers 405.
 * The shared AWS config files are pointed at nothing so a developer's ~/.aws cannot leak in.
 *
 * s3rver runs in a child process started with --openssl-legacy-provider: it encrypts ListObjectsV2
 * continuation tokens with DES, which Node 20's OpenSSL 3 refuses by default (every paginated
 * listing would fail with a 500). The child exits when the test process goes away (its stdin closes).
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';

export interface S3Server {
  /** e.g. http://127.0.0.1:41234 */
  endpoint: string;
  /** The first bucket created ("test" unless options.buckets says otherwise). */
  bucket: string;
  buckets: string[];
  /** AWS_* variables that point the SDK at this server. */
  env: Record<string, string>;
  /** Where s3rver keeps its objects (deleted by stop). */
  directory: string;
  stop(): Promise<void>;
}

const CHILD = `
const S3rver = require(process.argv[1]);
const [directory, buckets] = [process.argv[2], JSON.parse(process.argv[3])];
const server = new S3rver({ address: '127.0.0.1', port: 0, silent: true, directory,
  configureBuckets: buckets.map((name) => ({ name })) });
server.run().then((address) => process.stdout.write(JSON.stringify({ port: address.port }) + '\\n'));
process.stdin.on('end', () => process.exit(0)).resume();
`;

/**
 * options.processEnv: put `env` in process.env once the server is up; stop() then puts process.env back
 * as it was before (whatever the test changed in between, e.g. an endpoint pointed at a proxy).
 */
export async function startS3Server(options: { buckets?: string[]; processEnv?: boolean } = {}): Promise<S3Server> {
  const buckets = options.buckets ?? ['test'];
  const directory = await mkdtemp(join(tmpdir(), 'pairgen-s3rver-'));
  const s3rverPath = createRequire(import.meta.url).resolve('s3rver');
  const child = spawn(process.execPath, ['--openssl-legacy-provider', '-e', CHILD, s3rverPath, directory, JSON.stringify(buckets)], {
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  const firstLine = createInterface({ input: child.stdout })[Symbol.asyncIterator]().next();
  const started = await Promise.race([firstLine, once(child, 'exit').then(() => null)]);
  if (!started || started.done) {
    await rm(directory, { recursive: true, force: true });
    throw new Error('s3rver did not start (see its output above)');
  }
  const { port } = JSON.parse(started.value) as { port: number };
  const endpoint = `http://127.0.0.1:${port}`;
  const nowhere = join(directory, 'no-aws-config');
  const env = {
    AWS_ENDPOINT_URL_S3: endpoint,
    AWS_REGION: 'us-east-1',
    AWS_S3_FORCE_PATH_STYLE: 'true',
    AWS_ACCESS_KEY_ID: 'S3RVER',
    AWS_SECRET_ACCESS_KEY: 'S3RVER',
    AWS_CONFIG_FILE: nowhere,
    AWS_SHARED_CREDENTIALS_FILE: nowhere,
    AWS_EC2_METADATA_DISABLED: 'true',
  };
  const savedEnv = options.processEnv ? { ...process.env } : null;
  if (options.processEnv) Object.assign(process.env, env);
  return {
    endpoint,
    bucket: buckets[0] ?? '',
    buckets,
    directory,
    env,
    async stop() {
      if (savedEnv) {
        for (const k of Object.keys(process.env)) if (!(k in savedEnv)) delete process.env[k];
        Object.assign(process.env, savedEnv);
      }
      if (child.exitCode === null) {
        const exited = once(child, 'exit');
        child.stdin.end();
        await exited;
      }
      await rm(directory, { recursive: true, force: true });
    },
  };
}
