//===- ChatTemplateFuzzer.cpp - Chat templates and their messages ---------===//
//
// Input: a template, a NUL byte, then the messages as JSON. Any of it
// renders or is refused in one line; nothing nests deep enough to exhaust
// the stack.
//
//===----------------------------------------------------------------------===//

#include "fairkv/Serve/ChatTemplate.h"

#include <cstdint>
#include <string>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  const std::string input(reinterpret_cast<const char *>(data), size);
  const size_t split = input.find('\0');
  const std::string source = input.substr(0, split);
  const std::string messages =
      split == std::string::npos ? std::string("[{\"role\": \"user\", \"content\": \"hi\"}]")
                                 : input.substr(split + 1);
  (void)fairkv::serve::renderChatTemplate(source, messages, "<s>", "</s>", true);
  return 0;
}
