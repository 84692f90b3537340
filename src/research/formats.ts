/** The formats and default limits of `pairgen query` and `export`, apart from their code so the CLI can list them without loading it. */
export const QUERY_FORMATS = ['table', 'json', 'parquet'] as const;
export type QueryFormat = (typeof QUERY_FORMATS)[number];

/** A result's default bounds: what a terminal or a JSON consumer can take without running out of memory. */
export const QUERY_LIMITS = { rows: 100_000, bytes: 64 * 1024 * 1024 };

export const EXPORT_FORMATS = ['webdataset'] as const;
export type ExportFormat = (typeof EXPORT_FORMATS)[number];
