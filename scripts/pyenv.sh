#!/usr/bin/env bash
# The Python readers for the reader tests (test/readers/): a virtualenv at .cache/pyenv (or
# $PAIRGEN_CACHE/pyenv) built from test/readers/requirements.txt. The stamp file, written last, holds the
# requirements' sha256: a matching stamp means the venv is complete and nothing is done.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
CACHE=${PAIRGEN_CACHE:-$ROOT/.cache}
[[ $CACHE == /* ]] || CACHE=$PWD/$CACHE # relative to the caller, as pairgen reads PAIRGEN_CACHE
VENV=$CACHE/pyenv
cd "$ROOT"
REQ=test/readers/requirements.txt
STAMP=$VENV/requirements.sha256
PYTHON=${PYTHON:-python3}

fail() { echo "pyenv: $*" >&2; exit 1; }

command -v "$PYTHON" >/dev/null || fail "$PYTHON not found: the reader tests need Python >= 3.10 with venv and pip (or set PYTHON=/path/to/python3)"
version=$("$PYTHON" -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null) || fail "$PYTHON does not run (or set PYTHON=/path/to/python3)"
"$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 10))' ||
  fail "$PYTHON is Python $version; the readers in $REQ need Python >= 3.10 (or set PYTHON=/path/to/python3)"
want=$(sha256sum "$REQ" | cut -d' ' -f1)
if [[ -f $STAMP && $(<"$STAMP") == "$want" ]] && "$VENV/bin/python" -c '' 2>/dev/null; then exit 0; fi

echo "pyenv: installing $REQ into $VENV"
rm -rf "$VENV"
log=$(mktemp)
trap 'rm -f "$log"' EXIT
"$PYTHON" -m venv "$VENV" >"$log" 2>&1 ||
  { cat "$log" >&2; fail "$PYTHON -m venv failed: install Python's venv module (Debian: apt-get install python3-venv)"; }
# pip may try an unreachable default index before the configured mirror; without retries that costs
# a failed lookup, not minutes of back-off per package.
"$VENV/bin/python" -m pip install --quiet --retries 1 --timeout 15 -r "$REQ" >"$log" 2>&1 ||
  { grep -v '^WARNING: Retrying' "$log" >&2; fail "pip could not install $REQ into $VENV (errors above; it needs PyPI or a configured wheel mirror)"; }
echo "$want" >"$STAMP"
