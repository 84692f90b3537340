"""Load a `pairgen export --format webdataset` folder with Hugging Face `datasets` two ways and compare
every sample with what the tar files hold.

stdin: {"export": "<folder>"}. stdout: {"tar_keys": [...], "<loader>": {"splits": {name: rows}, "keys":
[...], "problems": [...]} or {"error": "..."}}. A problem is a JSON key the loader dropped or changed, or
an image member that does not decode.
"""
import contextlib
import glob
import json
import os
import sys
import tarfile
from attempt import attempt

MAX_PROBLEMS = 20


def tar_samples(folder):
    """pair key -> the parsed .json member, straight from the tars (the ground truth)."""
    out = {}
    for path in sorted(glob.glob(os.path.join(folder, "*.tar"))):
        with tarfile.open(path) as tar:
            for m in tar.getmembers():
                if m.name.endswith(".json"):
                    out[m.name[: -len(".json")]] = json.load(tar.extractfile(m))
    return out


def differences(want, got, path, problems):
    if isinstance(want, dict):
        if not isinstance(got, dict):
            problems.append(f"{path}: expected an object, got {got!r}"[:300])
            return
        for k, v in want.items():
            if k not in got:
                problems.append(f"{path}.{k}: dropped")
            else:
                differences(v, got[k], f"{path}.{k}", problems)
    elif isinstance(want, list) and isinstance(got, list) and len(want) == len(got):
        for i, (a, b) in enumerate(zip(want, got)):
            differences(a, b, f"{path}[{i}]", problems)
    elif want != got:
        problems.append(f"{path}: expected {want!r}, got {got!r}"[:300])


def seen(dd, truth):
    from PIL import Image

    problems, keys = [], []
    for name, ds in dd.items():
        if "__key__" not in ds.column_names:
            problems.append(f"{name}: {ds.num_rows} rows that are not WebDataset samples (columns {ds.column_names})")
            continue
        images = [c for c in ds.column_names if c.startswith(("source.", "edited."))]
        for row in ds:
            key = row["__key__"]
            keys.append(key)
            if key not in truth:
                problems.append(f"{name}/{key}: not a sample of the tars")
                continue
            differences(truth[key], row.get("json"), f"{name}/{key}:json", problems)
            problems += [f"{name}/{key}:{c}: not a PIL image" for c in images if not isinstance(row[c], Image.Image)]
        if not images:
            problems.append(f"{name}: no source.*/edited.* image columns in {ds.column_names}")
    return {"splits": {n: ds.num_rows for n, ds in dd.items()}, "keys": sorted(keys), "problems": problems[:MAX_PROBLEMS], "problem_count": len(problems)}


def main():
    folder = json.load(sys.stdin)["export"]
    import datasets

    datasets.disable_progress_bars()
    truth = tar_samples(folder)
    tars = sorted(glob.glob(os.path.join(folder, "*.tar")))
    return {
        "tar_keys": sorted(truth),
        "load_dataset_webdataset": attempt(lambda: seen(datasets.load_dataset("webdataset", data_files={"train": tars}), truth)),
        "load_dataset_folder": attempt(lambda: seen(datasets.load_dataset(folder), truth)),
    }


if __name__ == "__main__":
    # Libraries may print to stdout; only the result goes there.
    with contextlib.redirect_stdout(sys.stderr):
        out = main()
    print(json.dumps(out))
