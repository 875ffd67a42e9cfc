#include "edgefd/common/files.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <random>

#include "edgefd/common/unique_fd.h"

namespace edgefd {

Result<std::string> ReadFileAtMost(const std::filesystem::path& path, size_t max_bytes,
                                   std::string_view what) {
  const std::string where = path.string() + ": ";
  std::ifstream in(path, std::ios::binary);
  if (!in) return Error{where + "cannot open " + std::string(what) + ": " + std::strerror(errno)};
  // Read by pieces: memory grows with what the file holds, not with the limit (a 16 MiB limit
  // allocated and zero-filled at once made every read of /proc/self/smaps a 16 MiB peak).
  constexpr size_t kPiece = 64 * 1024;
  std::string text;
  while (in && text.size() <= max_bytes) {
    const size_t had = text.size();
    text.resize(had + std::min(kPiece, max_bytes + 1 - had));
    in.read(text.data() + had, std::streamsize(text.size() - had));
    text.resize(had + size_t(in.gcount()));
  }
  if (in.bad()) return Error{where + "cannot read " + std::string(what)};
  if (text.size() > max_bytes) {
    return Error{where + "larger than a " + std::string(what) + " may be (" +
                 std::to_string(max_bytes) + " bytes)"};
  }
  return text;
}

Status WriteFileAtomically(const std::filesystem::path& path, std::string_view content) {
  // Hidden and without the .json ending: CDI caches watch the directory and load *.json.
  std::filesystem::path tmp = path.parent_path() / ("." + path.filename().string() + ".XXXXXX");
  std::string tmpl = tmp.string();
  UniqueFd fd(::mkostemp(tmpl.data(), O_CLOEXEC));
  if (!fd.valid())
    return Error{path.string() +
                 ": cannot create a temporary file: " + std::string(std::strerror(errno))};
  auto fail = [&](const std::string& what) {
    std::string message = path.string() + ": " + what + ": " + std::string(std::strerror(errno));
    ::unlink(tmpl.c_str());
    return Error{message};
  };
  for (size_t off = 0; off < content.size();) {
    ssize_t n = ::write(fd.get(), content.data() + off, content.size() - off);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return fail("write");
    off += static_cast<size_t>(n);
  }
  // Readable by the container runtime (which runs as root anyway) and by a non-root reader.
  if (::fchmod(fd.get(), 0644) != 0) return fail("chmod");
  if (::fsync(fd.get()) != 0) return fail("fsync");
  fd.Reset();
  if (::rename(tmpl.c_str(), path.c_str()) != 0) return fail("rename");
  UniqueFd dir(::open(path.parent_path().c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (dir.valid()) ::fsync(dir.get());  // the rename itself survives a crash
  return Ok{};
}

std::string RandomHex(size_t digits) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(digits);
  std::random_device random;  // getrandom(2) on Linux
  while (out.size() < digits) {
    uint32_t bits = random();
    for (int i = 0; i < 8 && out.size() < digits; ++i, bits >>= 4) out.push_back(kHex[bits & 15]);
  }
  return out;
}

}  // namespace edgefd
