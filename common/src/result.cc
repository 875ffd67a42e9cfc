#include "edgefd/common/result.h"

#include "edgefd/common/program.h"

namespace edgefd {

Error Within(const std::string& context, const Error& error) {
  return Error{context + ": " + error.message, error.code};
}

int ExitStatus(const Error& error) {
  return error.code == ErrorCode::kInvalidArgument ? kExitUsage : kExitFailure;
}

bool Retryable(const Error& error) {
  switch (error.code) {
    case ErrorCode::kDeadlineExceeded:
    case ErrorCode::kResourceExhausted:
    case ErrorCode::kAborted:
    case ErrorCode::kUnavailable:
      return true;
    default:
      return false;
  }
}

}  // namespace edgefd
