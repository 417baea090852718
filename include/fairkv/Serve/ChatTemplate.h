//===- ChatTemplate.h - Chat templates, as transformers renders them -*- C++ -*-===//
//
// A model's tokenizer_config.json carries its chat template in Jinja.
// transformers renders it with jinja2 (trim_blocks and lstrip_blocks on,
// loop controls) over `messages`, `bos_token`, `eos_token` and
// `add_generation_prompt`. This renders the subset of Jinja real templates
// use: text, {{ }}, {% if/elif/else %}, {% for %} with `loop`, {% set %}
// (namespaces too), break/continue, whitespace control, the usual operators
// and tests, the common filters and string and dict methods, and
// raise_exception(). Anything else is refused in one line, never guessed.
//
//===----------------------------------------------------------------------===//

#ifndef FAIRKV_SERVE_CHATTEMPLATE_H
#define FAIRKV_SERVE_CHATTEMPLATE_H

#include "fairkv/Placement/Result.h"

#include <string>

namespace fairkv::serve {

using placement::Result;

/// Renders `source` with the variables of `contextJson` (a JSON object:
/// messages, bos_token, add_generation_prompt, ...).
Result<std::string> renderTemplate(const std::string &source,
                                   const std::string &contextJson);

/// The usual call: `messages` (a JSON list of {role, content}) with the
/// model's special tokens and the generation prompt.
Result<std::string> renderChatTemplate(const std::string &source,
                                       const std::string &messagesJson,
                                       const std::string &bosToken,
                                       const std::string &eosToken,
                                       bool addGenerationPrompt);

} // namespace fairkv::serve

#endif // FAIRKV_SERVE_CHATTEMPLATE_H
