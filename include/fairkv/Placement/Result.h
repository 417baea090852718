//===- Result.h - Value-or-error for the placement library ------*- C++ -*-===//
//
// The placement library is plain C++ and is also called from MLIR passes that
// are built without exceptions, so its API reports failures as values: a
// Result holds either a T or a one-line error message.
//
//===----------------------------------------------------------------------===//

#ifndef FAIRKV_PLACEMENT_RESULT_H
#define FAIRKV_PLACEMENT_RESULT_H

#include <optional>
#include <string>
#include <utility>

namespace fairkv::placement {

/// A one-line, user-facing error message.
struct Error {
  std::string message;
};

inline Error makeError(std::string message) { return Error{std::move(message)}; }

template <typename T>
class [[nodiscard]] Result {
public:
  Result(T value) : value_(std::move(value)) {}
  Result(Error error) : error_(std::move(error.message)) {}

  explicit operator bool() const { return value_.has_value(); }
  T &operator*() { return *value_; }
  const T &operator*() const { return *value_; }
  T *operator->() { return &*value_; }
  const T *operator->() const { return &*value_; }
  const std::string &error() const { return error_; }

private:
  std::optional<T> value_;
  std::string error_;
};

/// Result of an operation that only succeeds or fails.
class [[nodiscard]] Status {
public:
  Status() = default;
  Status(Error error) : error_(std::move(error.message)), failed_(true) {}
  static Status ok() { return Status(); }
  explicit operator bool() const { return !failed_; }
  const std::string &error() const { return error_; }

private:
  std::string error_;
  bool failed_ = false;
};

} // namespace fairkv::placement

#endif // FAIRKV_PLACEMENT_RESULT_H
