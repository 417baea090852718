/*===- fairkv-capi-test.c - The FairKV C API, from C ----------------------===//
 *
 * Parses the bundled model through mlir-c, shards it for 2 devices through
 * fairkvShardModule, checks the plan report and the device programs, then
 * checks that a bad pipeline reports an error instead of crashing.
 *
 *===----------------------------------------------------------------------===*/

#include "fairkv-c/FairKV.h"

#include "mlir-c/Dialect/Func.h"
#include "mlir-c/IR.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct Buffer {
  char *data;
  size_t size;
};

static void append(MlirStringRef text, void *userData) {
  struct Buffer *b = (struct Buffer *)userData;
  b->data = (char *)realloc(b->data, b->size + text.length + 1);
  memcpy(b->data + b->size, text.data, text.length);
  b->size += text.length;
  b->data[b->size] = '\0';
}

static int fail(const char *what) {
  fprintf(stderr, "FAIL: %s\n", what);
  return 1;
}

static char *readFile(const char *path) {
  FILE *f = fopen(path, "rb");
  if (!f)
    return NULL;
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  char *text = (char *)malloc(n + 1);
  if (fread(text, 1, n, f) != (size_t)n) {
    fclose(f);
    free(text);
    return NULL;
  }
  text[n] = '\0';
  fclose(f);
  return text;
}

int main(int argc, char **argv) {
  if (argc != 2)
    return fail("usage: fairkv-capi-test MODEL.mlir");
  char *source = readFile(argv[1]);
  if (!source)
    return fail("cannot read the model");

  MlirContext ctx = mlirContextCreate();
  mlirDialectHandleRegisterDialect(mlirGetDialectHandle__func__(), ctx);
  mlirDialectHandleRegisterDialect(mlirGetDialectHandle__fairkv__(), ctx);
  fairkvRegisterPasses();

  MlirModule module =
      mlirModuleCreateParse(ctx, mlirStringRefCreateFromCString(source));
  if (mlirModuleIsNull(module))
    return fail("cannot parse the model");

  struct Buffer report = {NULL, 0}, error = {NULL, 0}, printed = {NULL, 0};
  MlirLogicalResult r = fairkvShardModule(
      module, mlirStringRefCreateFromCString("devices=2 strategy=fairkv"),
      append, append, &report);
  if (mlirLogicalResultIsFailure(r))
    return fail(report.data ? report.data : "fairkvShardModule failed");
  if (!report.data || !strstr(report.data, "\"format\": \"fairkv-plan/v1\"") ||
      !strstr(report.data, "\"devices\": 2"))
    return fail("the plan report is not a 2-device fairkv-plan/v1");

  mlirOperationPrint(mlirModuleGetOperation(module), append, &printed);
  if (!strstr(printed.data, "func.func @decode_step_dev0") ||
      !strstr(printed.data, "func.func @decode_step_dev1") ||
      !strstr(printed.data, "fairkv.all_reduce"))
    return fail("the module was not sharded into 2 device programs");

  /* A pipeline that does not parse is an error, reported, not a crash. */
  r = fairkvRunPipeline(module,
                        mlirStringRefCreateFromCString("builtin.module(no-such-pass)"),
                        append, &error);
  if (!mlirLogicalResultIsFailure(r) || !error.data)
    return fail("a bad pipeline was accepted");

  printf("fairkv C API: sharded into 2 device programs; plan report %zu "
         "bytes; bad pipeline rejected\n",
         report.size);
  mlirModuleDestroy(module);
  mlirContextDestroy(ctx);
  free(source);
  free(report.data);
  free(error.data);
  free(printed.data);
  return 0;
}
