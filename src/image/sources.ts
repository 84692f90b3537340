import { readdirSync, statSync } from 'node:fs';
import { extname, join } from 'node:path';
import { asyncBufferFromFile, parquetMetadataAsync, parquetReadObjects, parquetSchema, type AsyncBuffer } from 'hyparquet';
import { UserError } from '../errors.ts';
import { IMAGE_EXTENSIONS, isImageFileName } from './decode.ts';

export interface ImageSourceOptions {
  /** Parquet: the image column is the first of these the table has. */
  columns: readonly string[];
  /** The config keys the path and the column came from, named in errors (none for a CLI argument). */
  keys?: { path?: string; column?: string };
}

/** One image of a source, still encoded: hand `input` and `label` to decodeImage. */
export interface SourceImage {
  /** The file name in the folder, or `column[row]`. */
  name: string;
  /** Names the image in errors: the file's path, or `table.parquet row i column`. */
  label: string;
  /** The file's path, or the Parquet cell's bytes. */
  input: string | Uint8Array;
}

/**
 * Images read from "a folder of images or a Parquet column": the image files of a folder sorted by name
 * (the extensions of IMAGE_EXTENSIONS), or the rows of a .parquet table whose image column holds encoded
 * images as binary or as Hugging Face Image structs {bytes, path}.
 */
export class ImageSources {
  private constructor(
    readonly path: string,
    readonly count: number,
    /** The Parquet image column; null for a folder. */
    readonly column: string | null,
    private readonly files: readonly string[],
    private readonly table: AsyncBuffer | null,
    /** What error messages start with: the config key of the path and of the column, or nothing. */
    private readonly prefixes: { path: string; column: string },
  ) {}

  static async open(path: string, options: ImageSourceOptions): Promise<ImageSources> {
    const prefixes = { path: prefix(options.keys?.path), column: prefix(options.keys?.column) };
    let isFolder: boolean;
    try {
      isFolder = statSync(path).isDirectory();
    } catch {
      throw new UserError(`${prefixes.path}${path} does not exist (expected a folder of images or a .parquet file)`);
    }
    if (isFolder) {
      const files = readdirSync(path).filter(isImageFileName).sort();
      if (!files.length) throw new UserError(`${prefixes.path}${path} holds no ${IMAGE_EXTENSIONS.join('/')} images`);
      return new ImageSources(path, files.length, null, files, null, prefixes);
    }
    if (extname(path).toLowerCase() !== '.parquet') throw new UserError(`${prefixes.path}${path} is not a folder or a .parquet file (expected a folder of images or a .parquet file)`);
    let table: AsyncBuffer;
    let rows: number;
    let names: string[];
    try {
      table = await asyncBufferFromFile(path);
      const meta = await parquetMetadataAsync(table);
      rows = Number(meta.num_rows);
      names = parquetSchema(meta).children.map((c) => c.element.name);
    } catch (e) {
      throw new UserError(`${prefixes.path}cannot read ${path} as Parquet: ${(e as Error).message}`);
    }
    const column = options.columns.find((c) => names.includes(c));
    if (!column) throw new UserError(`${prefixes.column}${path} has no image column ${options.columns.map((c) => `"${c}"`).join(' or ')} (columns: ${names.join(', ')})`);
    if (!rows) throw new UserError(`${prefixes.path}${path} has no rows`);
    return new ImageSources(path, rows, column, [], table, prefixes);
  }

  /** Image i (0 <= i < count). A Parquet row without image bytes is a UserError naming the row. */
  async get(i: number): Promise<SourceImage> {
    if (!this.table) return this.fromFile(this.files[i]);
    const [row] = await parquetReadObjects({ file: this.table, columns: [this.column!], rowStart: i, rowEnd: i + 1, utf8: false });
    const image = this.fromCell(i, row[this.column!]);
    if (!image) throw new UserError(`${this.prefixes.path}${this.path} row ${i} column "${this.column}" holds no image bytes (expected binary or {bytes, path})`);
    return image;
  }

  /** Every image in order, the Parquet column read in one go; rows without image bytes are skipped. */
  async *all(): AsyncGenerator<SourceImage> {
    if (!this.table) {
      for (const f of this.files) yield this.fromFile(f);
      return;
    }
    const rows = await parquetReadObjects({ file: this.table, columns: [this.column!], utf8: false });
    for (const [i, row] of rows.entries()) {
      const image = this.fromCell(i, row[this.column!]);
      if (image) yield image;
    }
  }

  private fromFile(file: string): SourceImage {
    const path = join(this.path, file);
    return { name: file, label: path, input: path };
  }

  private fromCell(i: number, cell: unknown): SourceImage | null {
    const bytes = cell instanceof Uint8Array ? cell : (cell as { bytes?: unknown } | null)?.bytes;
    if (!(bytes instanceof Uint8Array)) return null;
    return { name: `${this.column}[${i}]`, label: `${this.path} row ${i} ${this.column}`, input: bytes };
  }
}

function prefix(key: string | undefined): string {
  return key ? `${key}: ` : '';
}
