/**
 * The researcher workflow over finished runs: SQL (query), new selections from recorded scores
 * (refilter), exact or changed replays of chosen pairs (regenerate), splits, WebDataset export and the
 * HTML report. See docs/research.md.
 */
export { queryRun, QUERY_FORMATS, type QueryFormat, type QueryOptions, type QueryResult } from './query.ts';
export { refilterRun, type RefilterOptions, type RefilterResult } from './refilter.ts';
export { regenerateRun, type RegenerateOptions, type RegenerateResult } from './regenerate.ts';
export { splitOf, parseSplits, DEFAULT_SPLITS, SPLIT_NAMES, type SplitFractions } from '../dataset/splits.ts';
export { derivedPairId } from './derive.ts';
export { exportRun, EXPORT_FORMATS, type ExportFormat, type ExportOptions, type ExportResult } from './export.ts';
export { reportRun, REPORT_DIR, type ReportOptions, type ThresholdSweep } from '../report/report.ts';
