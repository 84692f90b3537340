/**
 * Pictures of a run: contact sheets (`pairgen preview`), the preview/ folder that finalize writes (sheets
 * per category, identity histogram, index.html) and the HTML report with its plots (`pairgen report`).
 * See docs/preview.md and docs/research.md.
 */
export { previewRun, writePreview, PREVIEW_DIR, MAX_SHEET_ROWS, type PreviewOptions } from './preview.ts';
export { renderHistogram } from './histogram.ts';
export { reportRun, REPORT_DIR, type ReportOptions, type ThresholdSweep } from './report.ts';
