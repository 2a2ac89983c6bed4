#!/usr/bin/env bash
# Runs the Python example client against a Prism proxy:
#   examples/clients/python/run.sh <proxy host:port> <keyvalue namespace> <messaging namespace>
#   examples/clients/python/run.sh --contract|--mailbox <proxy host:port> <namespace>
#   examples/clients/python/run.sh --large <proxy host:port> <namespace> <MiB>
# Creates a virtualenv (cached under .prism-test/python-venv), generates stubs from proto/ with
# grpcio-tools into a temporary directory, and runs client.py. Stubs are not committed: proto/ is
# the only source of the wire contract.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../../.." && pwd)"
venv="${PRISM_PYTHON_VENV:-$repo/.prism-test/python-venv}"
if [ ! -x "$venv/bin/python" ] || ! cmp -s "$here/requirements.txt" "$venv/requirements.txt"; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$here/requirements.txt"
  cp "$here/requirements.txt" "$venv/requirements.txt"
fi
stubs="$(mktemp -d)"
trap 'rm -rf "$stubs"' EXIT
"$venv/bin/python" -m grpc_tools.protoc -I "$repo/proto" --python_out="$stubs" --grpc_python_out="$stubs" \
  "$repo"/proto/prism/data/v1/*.proto
# Generated packages need __init__.py files to import as prism.data.v1.
find "$stubs/prism" -type d -exec touch {}/__init__.py \;
PYTHONPATH="$stubs" exec "$venv/bin/python" "$here/client.py" "$@"
