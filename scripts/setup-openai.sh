#!/usr/bin/env bash
# Makes the virtualenv the server's acceptance test drives the server from:
# the official `openai` client and `prometheus_client` (its text-format
# parser checks /metrics). Outside the repository, shared by build trees;
# FAIRKV_OPENAI_VENV overrides where. Idempotent. Without network access it
# warns and the test reports UNSUPPORTED.
set -uo pipefail
venv="${FAIRKV_OPENAI_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/fairkv/openai-venv}"
if "$venv/bin/python" -c "import openai, prometheus_client" 2>/dev/null; then
  echo "setup-openai: $venv ready"
  exit 0
fi
mkdir -p "$(dirname "$venv")"
if ! python3 -m venv "$venv" || \
   ! "$venv/bin/pip" install --quiet "openai>=1.40,<3" "prometheus_client>=0.20"; then
  echo "setup-openai: warning: could not install openai into $venv; the" \
       "server's acceptance test will be UNSUPPORTED" >&2
  exit 0
fi
echo "setup-openai: installed openai into $venv"
