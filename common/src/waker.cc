#include "edgefd/common/waker.h"

#include <sys/eventfd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <string>

namespace edgefd {

Status Waker::Open() {
  fd_.Reset(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
  if (!fd_.valid()) return Error{std::string("eventfd: ") + std::strerror(errno)};
  return Ok{};
}

void Waker::Wake() const {
  const uint64_t one = 1;
  // Only fails when the counter would overflow (2^64 - 2 unread wakes) or before Open.
  [[maybe_unused]] ssize_t n = ::write(fd_.get(), &one, sizeof one);
}

void Waker::Drain() const {
  uint64_t value;
  [[maybe_unused]] ssize_t n = ::read(fd_.get(), &value, sizeof value);
}

}  // namespace edgefd
