/**
 * Chosen rows of one data file (data/<split>-NNNNN-of-MMMMM.parquet, or a rejects file): their columns
 * and stored images, read by position (a manifest row's `file_row`) and checked against their pair_id,
 * so a stale manifest cannot hand out another pair's images. Only the row span asked for is decoded.
 */
import { parquetReadObjects, type AsyncBuffer, type FileMetaData } from 'hyparquet';
import { UserError } from '../errors.ts';
import { IMAGE_COLUMNS, pairSchema, readPairgenMetadata, recordValue, type ImageCell, type PairRecord, type ParquetSource } from '../shards/index.ts';
import type { Store } from '../store/types.ts';

/** Which row to read: its position in the file and the pair the manifest says is there. */
export interface RowRef {
  pair_id: string;
  file_row: number;
}

export interface StoredImages {
  source_image: ImageCell;
  edited_image: ImageCell;
}

const FIELDS = new Map(pairSchema.fields.map((f) => [f.name, f]));

export class ShardFile {
  private constructor(
    /** How errors name the file, e.g. "s3://bucket/run/data/train-00000-of-00004.parquet". */
    readonly name: string,
    private readonly buffer: AsyncBuffer,
    private readonly metadata: FileMetaData,
  ) {}

  /** A data file of a run that its manifest lists. */
  static async fetch(store: Store, file: string): Promise<ShardFile> {
    const bytes = await store.getIfExists(file);
    if (!bytes) throw new UserError(`${store.uri}/${file}: listed in the manifest but missing from the run`);
    return ShardFile.open(bytes, `${store.uri}/${file}`);
  }

  static async open(source: ParquetSource, name: string): Promise<ShardFile> {
    const { metadata, kind, buffer } = await readPairgenMetadata(source, name);
    if (kind === 'manifest' || kind === 'manifest-part') throw new UserError(`${name}: is a ${kind}, expected a shard or rejects file`);
    return new ShardFile(name, buffer, metadata);
  }

  /** False for rejects files: rejected pairs keep no images. */
  get hasImages(): boolean {
    const names = new Set(this.metadata.schema.map((s) => s.name));
    return IMAGE_COLUMNS.every((c) => names.has(c));
  }

  /** The chosen rows' columns, by pair_id, as PairRecord values. */
  async read<C extends keyof PairRecord>(rows: readonly RowRef[], columns: readonly C[]): Promise<Map<string, Pick<PairRecord, C>>> {
    const out = new Map<string, Pick<PairRecord, C>>();
    if (rows.length === 0) return out;
    let first = Infinity;
    let last = -Infinity;
    for (const r of rows) {
      first = Math.min(first, r.file_row);
      last = Math.max(last, r.file_row);
    }
    const names = [...new Set<string>(['pair_id', ...columns])];
    // utf8: false keeps image bytes binary (hyparquet would decode un-annotated BYTE_ARRAYs as text);
    // pair_id and the other utf8 columns are annotated as such, so they still come back as strings.
    const cells = await parquetReadObjects({ file: this.buffer, metadata: this.metadata, columns: names, rowStart: first, rowEnd: last + 1, utf8: false });
    for (const r of rows) {
      const cell = cells[r.file_row - first];
      if (!cell || cell.pair_id !== r.pair_id) throw new UserError(`${this.name}: row ${r.file_row} is not pair ${r.pair_id} as the manifest says; the manifest is stale, re-run \`pairgen finalize\``);
      const row: Record<string, unknown> = {};
      for (const c of columns) row[c] = recordValue(FIELDS.get(c)!, cell[c]);
      out.set(r.pair_id, row as Pick<PairRecord, C>);
    }
    return out;
  }

  /** The chosen rows' stored images by pair_id; null when the file holds none (a rejects file). */
  async images(rows: readonly RowRef[]): Promise<Map<string, StoredImages> | null> {
    if (!this.hasImages) return null;
    return (await this.read(rows, IMAGE_COLUMNS)) as Map<string, StoredImages>;
  }
}
