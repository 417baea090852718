# -*- Python -*- lit configuration that runs the FairKV GoogleTest binaries.

import os

import lit.formats

config.name = "FAIRKV-Unit"
config.suffixes = []
config.test_exec_root = os.path.join(config.fairkv_obj_root, "unittests")
config.test_source_root = config.test_exec_root
# Every executable whose name ends in "Tests" below unittests/ is a suite.
config.test_format = lit.formats.GoogleTest(".", "Tests")
