# Sourced by scripts/start and scripts/test: make .venv with the project installed.
# EXTRAS selects the optional dependencies ("" or "[dev]"). The install runs only when
# it has not yet run for this pyproject.toml (and these extras): .venv/.installed
# holds the hash of the pyproject.toml it installed and the extras it took.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
PYTHON="${PYTHON:-python3}"
if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
    echo "socialcare needs Python 3.11 or newer (set PYTHON=/path/to/python3.11)" >&2
    exit 1
fi
if [ ! -x .venv/bin/python ]; then
    echo "creating .venv with $("$PYTHON" --version)"
    "$PYTHON" -m venv .venv
    .venv/bin/python -m pip install --quiet --disable-pip-version-check --upgrade pip
fi
STAMP=.venv/.installed
wanted="$(.venv/bin/python -c 'import hashlib, sys; print(hashlib.sha256(open("pyproject.toml", "rb").read()).hexdigest())') ${EXTRAS:-}"
installed="$(cat "$STAMP" 2>/dev/null || true)"
# The dev extras hold everything the plain install does.
if [ "$installed" != "$wanted" ] && [ "$installed" != "${wanted% *} [dev]" ]; then
    if [ -z "$installed" ]; then
        echo "installing socialcare${EXTRAS:-} and its dependencies into .venv (a few minutes the first time)…"
    else
        echo "pyproject.toml changed since the last install: installing socialcare${EXTRAS:-} into .venv again…"
    fi
    rm -f "$STAMP"
    .venv/bin/python -m pip install --quiet --disable-pip-version-check -e ".${EXTRAS:-}"
    echo "$wanted" > "$STAMP"
    echo "installed."
fi
