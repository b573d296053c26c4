#!/usr/bin/env bash
# Every test of the repository, on a machine with no GPU: `cargo test --workspace`, then the
# PyTorch package: a virtual environment (BNF_VENV, default target/venv) with the pinned test
# requirements from PyPI, `pip install ./python` (built by maturin), and pytest on python/tests.
# GPU tests report themselves skipped. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

cargo test --workspace

venv="${BNF_VENV:-target/venv}"
if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv"
fi
venv="$(cd "$venv" && pwd)"
# The PEP 517 build runs `maturin` from the environment.
export PATH="$venv/bin:$PATH"
"$venv/bin/python" -m pip install -q --disable-pip-version-check -r python/requirements-test.txt
"$venv/bin/python" -m pip install -q --disable-pip-version-check --no-build-isolation ./python
# From outside the source tree, so that the installed package (with its built extension) is
# the one imported.
cd python/tests
"$venv/bin/python" -m pytest -q -rs -p no:cacheprovider "$@" .
