# -*- Python -*- lit configuration of the FairKV regression tests.

import os

import lit.formats
from lit.llvm import llvm_config
from lit.llvm.subst import ToolSubst

config.name = "FAIRKV"
config.test_format = lit.formats.ShTest(not llvm_config.use_lit_shell)
config.suffixes = [".mlir", ".test"]
config.excludes = ["Inputs", "Integration", "CMakeLists.txt", "README.txt", "lit.cfg.py",
                   "lit.site.cfg.py"]
config.test_source_root = os.path.dirname(__file__)
config.test_exec_root = os.path.join(config.fairkv_obj_root, "test")

# Undefined FileCheck variables are errors across CHECK-LABEL blocks.
config.environment["FILECHECK_OPTS"] = "-enable-var-scope"

config.substitutions.append(("%fairkv_src_root", config.fairkv_src_root))
config.substitutions.append(("%fairkv_libs", config.fairkv_lib_dir))
# The `fairkv` command, by explicit substitution: a plain "fairkv" tool
# substitution would also rewrite words like strategy=fairkv.
config.substitutions.append(
    ("%fairkv_cli", os.path.join(config.fairkv_tools_dir, "fairkv")))

# The shared per-head profiles sit beside the repository; tests that read
# them require this feature and are reported UNSUPPORTED without it.
shared_profiles = os.path.join(os.path.dirname(config.fairkv_src_root),
                               "shared", "profiles")
if os.path.isdir(shared_profiles):
    config.available_features.add("shared-profiles")
    config.substitutions.append(("%shared_profiles", shared_profiles))

# The official OpenAI client, for the server's acceptance test: the
# virtualenv scripts/setup-openai.sh makes (outside the repository).
openai_venv = os.environ.get(
    "FAIRKV_OPENAI_VENV",
    os.path.join(os.environ.get("XDG_CACHE_HOME",
                                os.path.join(os.path.expanduser("~"), ".cache")),
                 "fairkv", "openai-venv"))
openai_python = os.path.join(openai_venv, "bin", "python")
if os.path.exists(openai_python):
    import subprocess as _sp
    if _sp.run([openai_python, "-c", "import openai, prometheus_client"],
               stdout=_sp.DEVNULL, stderr=_sp.DEVNULL).returncode == 0:
        config.available_features.add("openai")
        config.substitutions.append(("%openai_python", openai_python))

if config.fairkv_enable_cuda:
    config.available_features.add("cuda-build")

# MPI jobs: the runtime built with MPI and an mpirun to launch them. CI runs
# as root, which OpenMPI refuses unless told; ranks may outnumber the cores.
import shutil
if config.fairkv_have_mpi and shutil.which("mpirun"):
    config.available_features.add("mpi")
    config.substitutions.append(
        ("%mpirun", "env OMPI_ALLOW_RUN_AS_ROOT=1 "
                    "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 mpirun --oversubscribe"))

# Multi-host MPI without hosts: two network namespaces joined by a veth pair
# (test/E2E/Inputs/mpi-netns.sh). Needs root and a kernel that lets it make
# namespaces: probed once, with a name no other run uses.
import os
import subprocess
if "mpi" in config.available_features and os.geteuid() == 0 and shutil.which("ip"):
    probe = "fairkv-probe-%d" % os.getpid()
    if subprocess.run(["ip", "netns", "add", probe],
                      stdout=subprocess.DEVNULL,
                      stderr=subprocess.DEVNULL).returncode == 0:
        subprocess.run(["ip", "netns", "del", probe])
        config.available_features.add("netns")

# A machine without CUDA, NCCL or MPI, simulated: scripts/without-gpu-libs.sh
# hides their libraries in a private mount namespace (root only).
without_gpu_libs = os.path.join(config.fairkv_src_root, "scripts",
                                "without-gpu-libs.sh")
if os.geteuid() == 0 and subprocess.run(
        [without_gpu_libs, "true"], stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL).returncode == 0:
    config.available_features.add("without-gpu-libs")
    config.substitutions.append(("%without_gpu_libs", without_gpu_libs))

llvm_config.use_default_substitutions()
llvm_config.with_environment("PATH", config.llvm_tools_dir, append_path=True)
llvm_config.add_tool_substitutions(
    ["fairkv-opt", "fairkv-bench-overlap", "fairkv-bench-device-times",
     ToolSubst("mlir-translate", unresolved="fatal"),
     ToolSubst("mlir-opt", unresolved="fatal")],
    [config.fairkv_tools_dir, config.llvm_tools_dir])
