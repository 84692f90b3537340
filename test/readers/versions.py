"""Print the versions of the Python readers the reader tests use, as JSON (the test logs them)."""
import json
from importlib.metadata import version

print(json.dumps({p: version(p) for p in ("datasets", "pyarrow", "polars", "fastparquet", "pillow")}))
