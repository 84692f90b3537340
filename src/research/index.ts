/**
 * Derived runs and what researchers do with a finished run: SQL (query), a new selection from recorded
 * scores (refilter), exact or changed replays of chosen pairs (regenerate), WebDataset export, and
 * copying a run of the earlier layout into the current one (upgrade).
 * Splits live with the run layout (src/dataset/splits.ts), pictures and the HTML report in src/report/.
 * See docs/research.md.
 */
export { queryRun, QUERY_FORMATS, QUERY_LIMITS, type QueryFormat, type QueryOptions, type QueryResult } from './query.ts';
export { refilterRun, type RefilterOptions, type RefilterResult } from './refilter.ts';
export { regenerateRun, type RegenerateOptions, type RegenerateResult } from './regenerate.ts';
export { derivedPairId } from './derive.ts';
export { exportRun, EXPORT_FORMATS, type ExportFormat, type ExportOptions, type ExportResult } from './export.ts';
export { upgradeRun, type UpgradeResult } from './upgrade.ts';
