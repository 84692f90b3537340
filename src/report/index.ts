/**
 * Pictures of a run: contact sheets (`pairgen preview`), the preview/ folder that finalize writes (sheets
 * per category, identity histogram, score distributions, index.html) and the HTML report with its plots
 * (`pairgen report`).
 * See docs/preview.md and docs/research.md.
 */
export { previewRun, writePreview, PREVIEW_DIR, MAX_SHEET_ROWS, type PreviewOptions } from './preview.ts';
export { renderHistogram } from './histogram.ts';
export { reportRun, REPORT_DIR, SCORES_FILE, type ReportOptions, type ThresholdSweep } from './report.ts';
export { scoreDistributions, type ScoreDistributions, type ScoreHistogram, type RuleBound } from './scores.ts';
export { verdictCaption, type VerdictCaption } from './caption.ts';
