//===- Strings.h - String helpers the text stages share ---------*- C++ -*-===//

#ifndef FAIRKV_TOKENIZER_STRINGS_H
#define FAIRKV_TOKENIZER_STRINGS_H

#include <string>
#include <string_view>

namespace fairkv::tokenizer {

/// `text` with every occurrence of `from` (left to right, not overlapping)
/// replaced by `to`; `text` itself when `from` is empty.
std::string replaceAll(std::string_view text, std::string_view from,
                       std::string_view to);

} // namespace fairkv::tokenizer

#endif // FAIRKV_TOKENIZER_STRINGS_H
