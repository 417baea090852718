# ctest driver: install the build into a fresh prefix, move the prefix (the
# package must be relocatable), build the downstream project against it and
# run it, run the C API test, and compile and run a program with the
# installed `fairkv`.
#   cmake -DBUILD_DIR=... -DSOURCE_DIR=... -DWORK_DIR=... -DCXX=... -DC=...
#         [-DLINK_FLAGS=...]  (the build's own, e.g. a sanitizer build's)
#         -P RunDownstream.cmake
cmake_minimum_required(VERSION 3.20)
file(REMOVE_RECURSE ${WORK_DIR})
function(run)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE out
                  ERROR_VARIABLE err)
  message("${out}")
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "failed (${rc}): ${ARGN}\n${err}")
  endif()
  set(last_output "${out}" PARENT_SCOPE)
endfunction()
run(${CMAKE_COMMAND} --install ${BUILD_DIR} --prefix ${WORK_DIR}/staging)
file(RENAME ${WORK_DIR}/staging ${WORK_DIR}/prefix)
run(${CMAKE_COMMAND} -G Ninja -S ${SOURCE_DIR}/test/Integration/downstream
    -B ${WORK_DIR}/build -DFairKV_DIR=${WORK_DIR}/prefix/lib/cmake/FairKV
    -DCMAKE_CXX_COMPILER=${CXX} -DCMAKE_C_COMPILER=${C}
    "-DCMAKE_EXE_LINKER_FLAGS=${LINK_FLAGS}"
    -DCMAKE_BUILD_TYPE=Release)
run(${CMAKE_COMMAND} --build ${WORK_DIR}/build)
run(${WORK_DIR}/build/downstream ${SOURCE_DIR}/examples/tiny-2layer.mlir)
run(${WORK_DIR}/build/capi-test ${SOURCE_DIR}/examples/tiny-2layer.mlir)
run(${WORK_DIR}/prefix/bin/fairkv weights --model tiny -o ${WORK_DIR}/w.safetensors)
run(${WORK_DIR}/prefix/bin/fairkv compile --model tiny --profile synthetic
    --mean-tokens 16 --devices 2 -o ${WORK_DIR}/program)
run(${WORK_DIR}/program --weights ${WORK_DIR}/w.safetensors
    --random-prompts 2 --prompt-len 8 --max-new-tokens 2)
# A program installed in the prefix's bin/ finds the runtime in ../lib
# (RUNPATH $ORIGIN/../lib) after the prefix moves again, and the runtime
# finds its installed plugins beside it.
run(${WORK_DIR}/prefix/bin/fairkv compile --model tiny --profile synthetic
    --mean-tokens 16 --devices 2 -o ${WORK_DIR}/prefix/bin/installed-program)
file(RENAME ${WORK_DIR}/prefix ${WORK_DIR}/moved)
run(${WORK_DIR}/moved/bin/installed-program --weights ${WORK_DIR}/w.safetensors
    --random-prompts 2 --prompt-len 8 --max-new-tokens 2)
foreach(plugin CUDA MPI)
  if(EXISTS ${BUILD_DIR}/lib/libFairKVRuntime${plugin}.so AND
     NOT EXISTS ${WORK_DIR}/moved/lib/libFairKVRuntime${plugin}.so)
    message(FATAL_ERROR "the ${plugin} plugin is not installed")
  endif()
endforeach()
if(EXISTS ${WORK_DIR}/moved/lib/libFairKVRuntimeCUDA.so)
  execute_process(COMMAND ${WORK_DIR}/moved/bin/installed-program
      --weights ${WORK_DIR}/w.safetensors --random-prompts 1 --backend cuda
    RESULT_VARIABLE rc OUTPUT_QUIET ERROR_VARIABLE err)
  # Without a GPU the backend loads and says so; it is never "not installed".
  if(err MATCHES "not installed")
    message(FATAL_ERROR "the installed runtime did not find its CUDA plugin: ${err}")
  endif()
endif()
message("downstream package test: passed")
