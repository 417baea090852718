#!/usr/bin/env bash
# Runs COMMAND as on a machine without CUDA, cuBLAS, NCCL or MPI: in a
# private mount namespace where every such shared library (and mpirun) is
# replaced by /dev/null, so the dynamic loader cannot load one. Needs root
# (unshare -m). FAIRKV_NO_GPU_LIBS=1 tells the tests which run this is.
#   scripts/without-gpu-libs.sh COMMAND [ARGS...]
set -euo pipefail
if [ $# -eq 0 ] || [ "$1" = --help ] || [ "$1" = -h ]; then
  echo "usage: $0 COMMAND [ARGS...]  (runs COMMAND with CUDA, NCCL and MPI hidden; root)"
  [ $# -eq 0 ] && exit 2 || exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "without-gpu-libs: needs root (a private mount namespace)" >&2
  exit 1
fi
export FAIRKV_NO_GPU_LIBS=1
exec unshare --mount --propagation private bash -c '
  set -euo pipefail
  libs="cuda|cudart|cublas|cublasLt|nccl|nvidia-ml|mpi|mpi_cxx|open-rte|open-pal"
  count=0
  while IFS= read -r -d "" f; do
    mount --bind /dev/null "$f"
    count=$((count + 1))
  done < <(find /usr/local /usr/lib /opt -xdev -type f -regextype posix-extended \
             -regex ".*/lib($libs)\.so(\.[0-9.]+)?" -print0 2>/dev/null)
  for tool in mpirun mpiexec orterun; do
    path=$(command -v "$tool" 2>/dev/null || true)
    [ -n "$path" ] && mount --bind /dev/null "$(readlink -f "$path")"
  done
  [ "$count" -gt 0 ] || [ -n "${FAIRKV_QUIET_MASK:-}" ] ||
    echo "without-gpu-libs: no CUDA, NCCL or MPI library to hide" >&2
  exec "$@"
' without-gpu-libs "$@"
