#pragma once

#include <string>
#include <utility>
#include <variant>

namespace edgefd {

/// What kind of failure an Error is, so that each boundary answers it its own way without a
/// side struct: a program's exit status (ExitStatus), a gRPC or ttrpc status (the numbers are
/// gRPC's canonical codes, so a server casts), whether to try again (Retryable).
enum class ErrorCode : int {
  kCancelled = 1,           ///< the caller gave up or the program is stopping
  kUnknown = 2,             ///< a runtime failure of no more specific kind (the default)
  kInvalidArgument = 3,     ///< bad input or bad usage, named in the message
  kDeadlineExceeded = 4,    ///< a peer did not answer in time
  kNotFound = 5,            ///< the thing named does not exist
  kAlreadyExists = 6,       ///< the thing named is there already
  kPermissionDenied = 7,    ///< the peer or the system refused
  kResourceExhausted = 8,   ///< a limit was hit (size, count, rate)
  kFailedPrecondition = 9,  ///< the state does not allow it (a device held, gone, unhealthy)
  kAborted = 10,            ///< a conflict (a concurrent change); retry the whole step
  kUnimplemented = 12,      ///< the peer does not serve it
  kInternal = 13,           ///< a broken invariant
  kUnavailable = 14,        ///< a peer cannot be reached now; retry later
  kUnauthenticated = 16,    ///< the peer did not accept the credentials
};

/// A failure that names the input it came from and what went wrong, ready to be printed as
/// one line ("/sys/firmware/fdt: bad magic 0x12345678, not a flattened devicetree"), and its
/// kind. `Error{"..."}` is a runtime failure of no special kind.
struct Error {
  std::string message;
  ErrorCode code = ErrorCode::kUnknown;
};

/// `error` of the same kind, its message led by `context` ("GET /api/v1/nodes/n1: ...").
Error Within(const std::string& context, const Error& error);

/// The exit status a program ends with for `error` (edgefd/common/program.h): 2 for bad input
/// or usage, 1 for anything else.
int ExitStatus(const Error& error);

/// True for failures that may pass by themselves (a peer unreachable, slow or busy, a
/// conflict): worth another try after a backoff. Bad input and refusals are not.
bool Retryable(const Error& error);

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
