import { createHash } from 'node:crypto';

/**
 * Per-pair identifiers, documented because users rely on them to regenerate pairs elsewhere:
 *   seed    = first 53 bits (big-endian) of sha256("pairgen-seed-v1\0{runSeed}\0{promptId}\0{sampleIndex}")
 *   pair_id = first 16 hex digits of   sha256("pairgen-pair-v1\0{runSeed}\0{promptId}\0{sampleIndex}")
 * Neither depends on the shard layout, so re-sharding a run keeps every pair's id and seed.
 */
export function pairSeed(runSeed: number, promptId: string, sampleIndex: number): number {
  const digest = createHash('sha256').update(`pairgen-seed-v1\0${runSeed}\0${promptId}\0${sampleIndex}`).digest();
  // 53 bits: 21 from the first 32-bit word, 32 from the second; exactly representable in a double.
  return (digest.readUInt32BE(0) >>> 11) * 2 ** 32 + digest.readUInt32BE(4);
}

export function pairId(runSeed: number, promptId: string, sampleIndex: number): string {
  return createHash('sha256').update(`pairgen-pair-v1\0${runSeed}\0${promptId}\0${sampleIndex}`).digest('hex').slice(0, 16);
}

/** Which training prompt row and which repetition a candidate index uses. */
export function candidateSlot(index: number, promptRows: number): { row: number; sampleIndex: number } {
  return { row: index % promptRows, sampleIndex: Math.floor(index / promptRows) };
}
