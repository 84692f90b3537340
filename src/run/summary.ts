import type { FinalizeResult } from './finalize.ts';

const pct = (x: number | null | undefined) => (x === null || x === undefined ? '—' : `${(100 * x).toFixed(1)}%`);

/**
 * The end-of-run summary: acceptance per category and why pairs were rejected, the identity filter and
 * the rules against ground truth (when the teacher records one), throughput and where the time went.
 */
export function formatRunSummary(result: FinalizeResult, wallSeconds: number | null): string {
  const s = result.stats;
  const lines: string[] = [];
  lines.push(`${s.name}: ${s.candidates} candidate pairs → ${s.accepted} accepted, ${s.rejected} rejected (${pct(s.acceptance_rate)} kept) in ${result.shards} shards`);
  const cats = Object.entries(s.by_category);
  if (cats.length) {
    const w = Math.max(8, ...cats.map(([c]) => c.length));
    lines.push(`  ${'category'.padEnd(w)}  accepted  rejected   kept  rejected because`);
    for (const [cat, g] of cats) {
      const reasons = Object.entries(g.reject_reasons).sort((a, b) => b[1] - a[1]).map(([r, n]) => `${r} ${n}`).join(', ');
      lines.push(`  ${cat.padEnd(w)}  ${String(g.accepted).padStart(8)}  ${String(g.rejected).padStart(8)}  ${pct(g.acceptance_rate).padStart(6)}  ${reasons || '—'}`);
    }
  }
  const gt = s.identity_vs_ground_truth;
  if (gt) {
    lines.push(
      `identity filter vs ground truth: precision ${pct(gt.precision)}, recall ${pct(gt.recall)} ` +
        `(kept & accepted ${gt.truePositives}, changed person & accepted ${gt.falsePositives}, kept & rejected ${gt.falseNegatives}, changed person & rejected ${gt.trueNegatives})`,
    );
  }
  const et = s.edit_vs_ground_truth;
  if (et) {
    lines.push(
      `edit rules vs ground truth:      precision ${pct(et.edit.precision)}, recall ${pct(et.edit.recall)} ` +
        `(failed edits accepted: none ${et.made.none.accepted} of ${et.made.none.pairs}, wrong ${et.made.wrong.accepted} of ${et.made.wrong.pairs})`,
      `all rules vs ground truth:       precision ${pct(et.pair.precision)}, recall ${pct(et.pair.recall)} (person kept and the asked edit made)`,
    );
  }
  if (s.near_duplicates) {
    const d = s.near_duplicates;
    lines.push(`near-duplicate sources: ${d.accepted} accepted pairs nearly copy an earlier accepted pair (${d.marked} rows marked in manifest.parquet duplicate_of; refilter --drop-duplicates drops them)`);
  }
  const t = s.timings_seconds;
  const stageTotal = Object.values(t).reduce((a, b) => a + b, 0);
  if (wallSeconds !== null && wallSeconds > 0) lines.push(`throughput: ${(s.candidates / wallSeconds).toFixed(2)} candidate pairs/s over ${wallSeconds.toFixed(1)} s of wall time`);
  if (stageTotal > 0) {
    const names: Record<string, string> = { sample_s: 'sampling', score_s: 'scoring', encode_s: 'encoding', write_s: 'writing' };
    lines.push(`time by stage (summed over pairs; stages overlap): ${Object.entries(t).map(([k, v]) => `${names[k] ?? k} ${v.toFixed(1)} s (${pct(v / stageTotal)})`).join(', ')}`);
  }
  if (s.worker_peak_rss_mb !== undefined) lines.push(`peak worker memory: ${s.worker_peak_rss_mb.toFixed(0)} MB`);
  const pictures = result.preview.length ? `pictures: ${result.uri}/preview/index.html` : `no preview/ (\`pairgen preview ${result.uri} --all\` writes it)`;
  lines.push(`written: ${result.uri}/manifest.parquet, stats.json, README.md; ${pictures}`);
  return lines.join('\n') + '\n';
}
