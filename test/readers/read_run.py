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
