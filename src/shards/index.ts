/**
 * The shard format: pair records, shard / rejects Parquet files, commit markers, the manifest,
 * stats.json and the dataset card. See docs/shards.md and manifests/schema.md.
 */
export {
  pairSchema, rejectsSchema, manifestSchema, runSchemas, scoreFields, scorersInColumns, toPairRecord, imageExtension, columnDescriptions, describeColumn, IMAGE_COLUMNS,
  type PairRecord, type RunSchemas, type ScoreColumns, type ImageCell, type ImageFormat, type ManifestRow, type RecordParts,
} from './record.ts';
export {
  encodeShard, encodeRejects, readShardMetadataRows, readPairgenMetadata, asAsyncBuffer, recordValue, DEFAULT_ROW_GROUP_BYTES,
  type ShardOptions, type ParquetSource,
} from './shard.ts';
export { huggingfaceMetadata } from './parquet.ts';
export { readColumns } from './column-reader.ts';
export {
  buildMarker, verifyMarker, verifyMarkerSizes, parseMarker, markerJson, markerFiles, sha256Hex,
  type ShardMarker, type MarkerInput, type MarkerCheck, type ShardCounts,
} from './marker.ts';
export { encodeManifestPart } from './manifest-group.ts';
export { writeManifest, writeManifestFromShards, MANIFEST_ROW_GROUP_ROWS, type ShardManifestOptions, type ManifestShard, type GroupStatsColumns } from './manifest.ts';
export { StatsAccumulator, computeStats, HISTOGRAM_BINS, type DatasetStats, type StatsRow } from './stats.ts';
export { renderDatasetCard, type CardInput, type CardSplit } from './card.ts';
export { encodeImage } from '../image/encode.ts';
