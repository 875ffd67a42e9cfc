#include "edgefd/common/files.h"

#include <cerrno>
#include <cstring>
#include <fstream>

namespace edgefd {

Result<std::string> ReadFileAtMost(const std::filesystem::path& path, size_t max_bytes,
                                   std::string_view what) {
  const std::string where = path.string() + ": ";
  std::ifstream in(path, std::ios::binary);
  if (!in) return Error{where + "cannot open " + std::string(what) + ": " + std::strerror(errno)};
  std::string text(max_bytes + 1, '\0');
  in.read(text.data(), std::streamsize(text.size()));
  if (in.bad()) return Error{where + "cannot read " + std::string(what)};
  text.resize(size_t(in.gcount()));
  if (text.size() > max_bytes) {
    return Error{where + "larger than a " + std::string(what) + " may be (" +
                 std::to_string(max_bytes) + " bytes)"};
  }
  return text;
}

}  // namespace edgefd
