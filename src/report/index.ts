/**
 * Pictures and checks of a run: contact sheets (`pairgen preview`), the preview/ folder that finalize
 * writes (sheets per category, identity histogram, index.html) and `pairgen check` of a pipeline config.
 * See docs/preview.md.
 */
export { previewRun, writePreview, PREVIEW_DIR, MAX_SHEET_ROWS, type PreviewOptions } from './preview.ts';
export { checkPipeline, formatCheckReport, type CheckReport } from '../config/check.ts';
export { renderHistogram } from './histogram.ts';
