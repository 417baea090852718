//===- ReadFile.cpp - Whole-file reads for the model and placement readers ===//
//
// Declared in fairkv/Placement/Profile.h; defined here, in the library both
// the config reader and the profile importers link, so there is one.
//
//===----------------------------------------------------------------------===//

#include "fairkv/Placement/Profile.h"

#include <fstream>
#include <sstream>

using namespace fairkv::placement;

Result<std::string> fairkv::placement::readFile(const std::string &path) {
  std::ifstream in(path, std::ios::binary);
  if (!in)
    return makeError("cannot open '" + path + "'");
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad())
    return makeError("cannot read '" + path + "'");
  return text.str();
}
