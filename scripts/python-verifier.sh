#!/usr/bin/env bash
# Prints the path of a python3 that has the Standard Webhooks reference library
# (`standardwebhooks`), for the test that runs the README's receiver
# (docs/examples/standard_webhooks_receiver.py): the machine's own python3 when it has it, else a
# virtualenv under target/ with it installed from PyPI (python3-venv installed with apt-get
# when missing). Exits non-zero when neither can be had.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh
if python3 -c 'import standardwebhooks' 2>/dev/null; then
  command -v python3
  exit 0
fi
venv=target/python-verifier
if ! "$venv/bin/python3" -c 'import standardwebhooks' 2>/dev/null; then
  python3 -m venv "$venv" >/dev/null 2>&1 || { apt_install python3-venv >&2 && python3 -m venv "$venv"; }
  "$venv/bin/pip" install --quiet standardwebhooks >&2
fi
echo "$PWD/$venv/bin/python3"
