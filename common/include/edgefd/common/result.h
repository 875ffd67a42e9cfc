#pragma once

#include <string>
#include <utility>
#include <variant>

namespace edgefd {

/// A failure that names the input it came from and what went wrong, ready to be printed as
/// one line ("/sys/firmware/fdt: bad magic 0x12345678, not a flattened devicetree").
struct Error {
  std::string message;
};

/// Value-or-error for fallible functions (std::expected is C++23; GCC 12 lacks it).
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}      // NOLINT(google-explicit-constructor)
  Result(Error error) : v_(std::move(error)) {}  // NOLINT(google-explicit-constructor)

  bool ok() const { return v_.index() == 0; }
  explicit operator bool() const { return ok(); }

  T& value() & { return std::get<0>(v_); }
  const T& value() const& { return std::get<0>(v_); }
  T&& value() && { return std::get<0>(std::move(v_)); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

  const Error& error() const { return std::get<1>(v_); }

 private:
  std::variant<T, Error> v_;
};

/// Result for functions that return nothing on success.
struct Ok {};
using Status = Result<Ok>;

}  // namespace edgefd
