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
message("downstream package test: passed")
