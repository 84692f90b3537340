"""Read a finished pairgen run with the real Python readers and report what each one saw.

stdin: {"run": "<run folder>"}. stdout: one JSON object, one entry per reader; a reader that raises gives
{"error": "<type>: <message>"} so the test names it. The test (readers.test.ts) decides what is right.
"""
import contextlib
import glob
import json
import os
import sys
from attempt import attempt


def splits_seen(dd):
    """Per split: rows, the distinct values of its `split` column, and whether every image decodes to PIL."""
    from PIL import Image

    out = {}
    for name, ds in dd.items():
        images = [c for c in ("source_image", "edited_image") if c in ds.column_names]
        undecoded = 0
        for row in ds:
            for c in images:
                if isinstance(row[c], Image.Image):
                    row[c].load()
                else:
                    undecoded += 1
        out[name] = {
            "rows": ds.num_rows,
            "split_values": sorted(set(ds["split"])) if "split" in ds.column_names else None,
            "image_columns": images,
            "undecoded_images": undecoded,
        }
    return out


def manifest_seen(path):
    """manifest.parquet through pyarrow: rows in order, row groups, every flat column chunk's statistics
    against the values it holds, whether each chunk has a page index, and what a pair_id filter finds.
    Polars' row count beside it."""
    import polars as pl
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    f = pq.ParquetFile(path)
    md = f.metadata
    table = f.read()
    problems = []
    checked = 0
    indexed = {"column": 0, "offset": 0, "chunks": 0}
    start = 0
    for g in range(md.num_row_groups):
        rg = md.row_group(g)
        part = table.slice(start, rg.num_rows)
        start += rg.num_rows
        for c in range(rg.num_columns):
            col = rg.column(c)
            indexed["chunks"] += 1
            indexed["column"] += 1 if getattr(col, "has_column_index", False) else 0
            indexed["offset"] += 1 if getattr(col, "has_offset_index", False) else 0
            name = col.path_in_schema
            if "." in name:
                continue  # list elements: pyarrow gives no per-element view here
            values = part.column(name)
            st = col.statistics
            if st is None:
                problems.append(f"{name} group {g}: no statistics")
                continue
            if st.null_count != values.null_count:
                problems.append(f"{name} group {g}: null_count {st.null_count}, the values hold {values.null_count}")
            if values.null_count == len(values) or not st.has_min_max:
                continue
            mm = pc.min_max(values)
            lo, hi = mm["min"].as_py(), mm["max"].as_py()
            if isinstance(lo, str):
                # Long strings' statistics are truncated: the min a prefix, the max at or above the max's prefix.
                ok = isinstance(st.min, str) and isinstance(st.max, str) and st.min <= lo and hi[: len(st.max)] <= st.max
            else:
                ok = st.min <= lo and hi <= st.max
            checked += 1
            if not ok:
                problems.append(f"{name} group {g}: statistics {st.min!r}..{st.max!r}, values {lo!r}..{hi!r}")
    middle = table.column("pair_id")[table.num_rows // 2].as_py()
    return {
        "rows": table.num_rows,
        "row_groups": md.num_row_groups,
        "pair_ids": table.column("pair_id").to_pylist(),
        "statistics_checked": checked,
        "statistics_problems": problems,
        "page_index": indexed,
        "pair_id_filter": {"pair_id": middle, "rows": pq.read_table(path, filters=[("pair_id", "=", middle)]).column("pair_id").to_pylist()},
        "polars_rows": pl.read_parquet(path).height,
    }


def main():
    run = json.load(sys.stdin)["run"]
    data = os.path.join(run, "data")
    import datasets
    import fastparquet
    import polars as pl
    import pyarrow.dataset as pads

    datasets.disable_progress_bars()
    result = {
        "load_dataset_run": attempt(lambda: splits_seen(datasets.load_dataset(run))),
        "load_dataset_parquet_data_dir": attempt(lambda: splits_seen(datasets.load_dataset("parquet", data_dir=data))),
        "pyarrow_dataset": attempt(lambda: {"rows": pads.dataset(data, format="parquet").count_rows()}),
        "polars_glob": attempt(lambda: {"rows": pl.scan_parquet(os.path.join(data, "*.parquet")).select(pl.len()).collect().item()}),
    }
    result["manifest"] = attempt(lambda: manifest_seen(os.path.join(run, "manifest.parquet")))
    files = sorted(glob.glob(os.path.join(run, "**", "*.parquet"), recursive=True))
    result["fastparquet"] = {
        os.path.relpath(f, run): attempt(lambda f=f: {"rows": len(fastparquet.ParquetFile(f).to_pandas())}) for f in files
    }
    return result


if __name__ == "__main__":
    # Libraries may print to stdout; only the result goes there.
    with contextlib.redirect_stdout(sys.stderr):
        out = main()
    print(json.dumps(out))
