import type { DatasetStats } from '../shards/index.ts';
import type { CategoryRules } from '../scorers/rules.ts';
import type { ScoreDistributions } from './scores.ts';

export interface ReportPage {
  name: string;
  runId: string;
  stats: DatasetStats;
  /** Category → its sheet's file name, relative to the page. */
  sheets: Map<string, string>;
  histogram: string;
  /** The pair scores' section; absent for a run without scorers (the page is then as before scorers existed). */
  scores?: ScoreSection;
}

/** What the "Score distributions" section of the preview page and the report shows. */
export interface ScoreSection {
  distributions: ScoreDistributions;
  /** Scorer → its plot's file name, relative to the page. */
  plots: Map<string, string>;
  rules: CategoryRules;
  /** The histograms as JSON, relative to the page (the report's scores.json); none in preview/. */
  data?: string;
}

/** preview/index.html: self-contained (inline CSS, no scripts, no external assets), relative links only. */
export function renderReportHtml(page: ReportPage): string {
  const s = page.stats;
  const pct = (x: number) => `${(x * 100).toFixed(1)}%`;
  const reasons = (r: Record<string, number>) => Object.entries(r).sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1)).map(([k, n]) => `${esc(k)} ${n}`).join(', ') || '—';
  const mean = (m: number | null) => (m === null ? '—' : m.toFixed(3));
  const rows = Object.entries(s.by_category).map(([c, g]) => {
    const sheet = page.sheets.get(c);
    return `<tr><td>${sheet ? `<a href="#${esc(anchor(sheet))}">${esc(c)}</a>` : esc(c)}</td><td>${g.candidates}</td><td>${g.accepted}</td><td>${g.rejected}</td><td>${pct(g.acceptance_rate)}</td><td>${mean(g.identity_similarity.mean)}</td><td>${reasons(g.reject_reasons)}</td></tr>`;
  });
  rows.push(`<tr class="total"><td>all</td><td>${s.candidates}</td><td>${s.accepted}</td><td>${s.rejected}</td><td>${pct(s.acceptance_rate)}</td><td>${mean(s.identity_similarity.mean)}</td><td>${reasons(s.reject_reasons)}</td></tr>`);
  const sheets = [...page.sheets].map(
    ([c, file]) => `<section id="${esc(anchor(file))}"><h3>${esc(c)}</h3><a href="${esc(encodeURI(file))}"><img src="${esc(encodeURI(file))}" alt="contact sheet of category ${esc(c)}"></a></section>`,
  );
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>${esc(page.name)}: pairgen preview</title>
<style>
body { font-family: "DejaVu Sans", system-ui, sans-serif; margin: 2em auto; max-width: 60em; color: #222; }
table { border-collapse: collapse; margin: 1em 0; }
th, td { border: 1px solid #ccc; padding: 0.3em 0.6em; text-align: right; }
th:first-child, td:first-child, td:last-child { text-align: left; }
tr.total { font-weight: bold; }
img { max-width: 100%; border: 1px solid #ddd; }
.muted { color: #666; }
</style>
</head>
<body>
<h1>${esc(page.name)}</h1>
<p class="muted">run ${esc(page.runId)} · ${s.shards} shards · ${s.candidates} candidate pairs, ${s.accepted} accepted (${pct(s.acceptance_rate)})</p>
<h2>Acceptance by category</h2>
<table>
<tr><th>category</th><th>candidates</th><th>accepted</th><th>rejected</th><th>acceptance</th><th>mean identity</th><th>reject reasons</th></tr>
${rows.join('\n')}
</table>
<h2>Identity similarity</h2>
<a href="${esc(page.histogram)}"><img src="${esc(page.histogram)}" alt="identity similarity histograms by category"></a>${page.scores ? `\n${scoresSectionHtml(page.scores, s)}` : ''}
<h2>Contact sheets</h2>
<p class="muted">Per category, the first accepted and rejected candidates in run order. Rejected pairs are framed in red with their reason; their images are not stored.</p>
${sheets.join('\n')}
</body>
</html>
`;
}

/**
 * "Score distributions": the rules (condition, the categories that have it, pairs it rejected) and a
 * plot per scorer. HTML without a trailing newline, for the preview page and the report alike.
 */
export function scoresSectionHtml(section: ScoreSection, stats: DatasetStats): string {
  const d = section.distributions;
  const rules = new Map<string, { name: string; text: string; categories: string[] }>();
  for (const c of d.categories) {
    for (const r of section.rules.get(c) ?? []) {
      const key = `${r.name}\n${r.text}`;
      if (!rules.has(key)) rules.set(key, { name: r.name, text: r.text, categories: [] });
      rules.get(key)!.categories.push(c);
    }
  }
  const rejected = (name: string, categories: string[]) => categories.reduce((n, c) => n + (stats.by_category[c]?.reject_reasons[name] ?? 0), 0);
  const rows = [...rules.values()].map(
    (r) => `<tr><td>${esc(r.name)}</td><td><code>${esc(r.text)}</code></td><td>${r.categories.length === d.categories.length ? 'all' : esc(r.categories.join(', '))}</td><td>${rejected(r.name, r.categories)}</td></tr>`,
  );
  const data = section.data ? ` Data: <a href="${esc(section.data)}">${esc(section.data)}</a>.` : '';
  const texts = d.texts.length ? ` Recorded as texts, not drawn: ${d.texts.map((t) => `<code>${esc(t)}</code>`).join(', ')}.` : '';
  return [
    '<h2>Score distributions</h2>',
    `<p>Every number of the enabled scorers (docs/scorers.md) by category: the share of each category's measured pairs in ${d.bins} bins over the run's range, with the rules' bounds as dashed red lines.${data}${texts}</p>`,
    rows.length
      ? `<table>\n<tr><th>rule</th><th>condition</th><th>categories</th><th>rejected</th></tr>\n${rows.join('\n')}\n</table>`
      : '<p class="muted">No rules: the scores did not decide the verdict (only the identity stage, when enabled).</p>',
    ...d.scorers.flatMap((scorer) => {
      const file = section.plots.get(scorer);
      return file ? [`<h3>${esc(scorer)}</h3>`, `<a href="${esc(file)}"><img src="${esc(file)}" alt="${esc(scorer)} score distributions by category"></a>`] : [];
    }),
  ].join('\n');
}

/** The section id of a sheet: its file name without extension (already URL- and id-safe). */
function anchor(file: string): string {
  return file.replace(/\.png$/, '');
}

function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}
