#include "edgefd/discovery/devicetree.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <functional>
#include <memory>
#include <set>
#include <utility>

extern "C" {
#include <libfdt.h>
}

namespace edgefd {
namespace fs = std::filesystem;

const DtNode* DtNode::Child(std::string_view child_name) const {
  for (const DtNode& c : children) {
    if (c.name == child_name) return &c;
  }
  return nullptr;
}

const std::string* DtNode::Property(std::string_view prop) const {
  auto it = properties.find(std::string(prop));
  return it == properties.end() ? nullptr : &it->second;
}

std::vector<std::string> DtNode::Strings(std::string_view prop) const {
  std::vector<std::string> out;
  const std::string* raw = Property(prop);
  if (raw == nullptr) return out;
  // A well-formed list is NUL-terminated strings; tolerate a missing final NUL and drop
  // empty entries so "a\0\0b" (or a property file with no NUL at all) still reads sensibly.
  size_t start = 0;
  while (start < raw->size()) {
    size_t nul = raw->find('\0', start);
    if (nul == std::string::npos) nul = raw->size();
    if (nul > start) out.emplace_back(raw->substr(start, nul - start));
    start = nul + 1;
  }
  return out;
}

std::optional<std::string> DtNode::String(std::string_view prop) const {
  std::vector<std::string> all = Strings(prop);
  if (all.empty()) return std::nullopt;
  return all.front();
}

std::vector<uint32_t> DtNode::Cells(std::string_view prop) const {
  std::vector<uint32_t> out;
  const std::string* raw = Property(prop);
  if (raw == nullptr) return out;
  for (size_t i = 0; i + 4 <= raw->size(); i += 4) {
    auto b = [&](size_t k) {
      return static_cast<uint32_t>(static_cast<unsigned char>((*raw)[i + k]));
    };
    out.push_back(b(0) << 24 | b(1) << 16 | b(2) << 8 | b(3));
  }
  return out;
}

bool DtNode::Enabled() const {
  std::optional<std::string> status = String("status");
  return !status || *status == "okay" || *status == "ok";
}

std::string DtNode::BaseName() const { return name.substr(0, name.find('@')); }

namespace {

void SortChildren(DtNode& node) {
  std::sort(node.children.begin(), node.children.end(),
            [](const DtNode& a, const DtNode& b) { return a.name < b.name; });
}

// POSIX directory walk: a live tree has thousands of nodes, and openat/readdir with d_type
// cost a fraction of std::filesystem plus ifstream per entry.
class DirReader {
 public:
  DirReader(std::vector<std::string>* warnings, const DtLimits& limits)
      : warnings_(warnings), limits_(limits) {}

  Result<DtNode> ReadRoot(const fs::path& dir) {
    // The top may be a symlink (/proc/device-tree is one); nothing below it is followed.
    int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) {
      int err = errno;
      return Error{dir.string() + ": " +
                   (err == ENOTDIR ? std::string("not a directory") : std::strerror(err))};
    }
    DtNode root;
    ReadNode(fd, dir.string(), root, 0);
    return root;
  }

 private:
  void Warn(std::string message) {
    if (warnings_ != nullptr) warnings_->push_back(std::move(message));
  }

  // Takes ownership of `fd`, an open directory.
  void ReadNode(int fd, const std::string& path, DtNode& node, int depth) {
    struct stat st {};
    if (::fstat(fd, &st) == 0 && !visited_.insert({st.st_dev, st.st_ino}).second) {
      Warn(path + ": directory seen before (a cycle), skipping");
      ::close(fd);
      return;
    }
    DIR* dir = ::fdopendir(fd);
    if (dir == nullptr) {
      Warn(path + ": " + std::strerror(errno) + ", skipping node");
      ::close(fd);
      return;
    }
    std::unique_ptr<DIR, int (*)(DIR*)> owner(dir, ::closedir);
    std::vector<std::string> deferred;
    while (dirent* entry = ::readdir(dir)) {
      std::string_view name = entry->d_name;
      if (name == "." || name == "..") continue;
      std::string child_path = path + "/" + entry->d_name;
      unsigned char type = entry->d_type;
      if (type == DT_UNKNOWN) {
        struct stat est {};
        if (::fstatat(fd, entry->d_name, &est, AT_SYMLINK_NOFOLLOW) != 0) continue;
        type = S_ISDIR(est.st_mode)   ? DT_DIR
               : S_ISREG(est.st_mode) ? DT_REG
               : S_ISLNK(est.st_mode) ? DT_LNK
                                      : DT_UNKNOWN;
      }
      if (type == DT_LNK) {
        // The kernel never exposes symlinks inside the tree; following one could loop.
        Warn(child_path + ": symlink, not followed");
      } else if (type == DT_DIR) {
        if (depth + 1 > limits_.max_depth) {
          Warn(child_path + ": deeper than " + std::to_string(limits_.max_depth) +
               " levels, skipping subtree");
          continue;
        }
        if (++node_count_ > limits_.max_nodes) {
          Warn(child_path + ": more than " + std::to_string(limits_.max_nodes) +
               " nodes, skipping");
          continue;
        }
        int child_fd = ::openat(fd, entry->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (child_fd < 0) {
          Warn(child_path + ": " + std::strerror(errno) + ", skipping node");
          continue;
        }
        DtNode child;
        child.name = entry->d_name;
        ReadNode(child_fd, child_path, child, depth + 1);
        node.children.push_back(std::move(child));
      } else if (type == DT_REG) {
        if (limits_.keep_property && !limits_.keep_property(name)) continue;
        if (limits_.defer_property && limits_.defer_property(name)) {
          deferred.emplace_back(name);
          continue;
        }
        ReadProperty(fd, entry->d_name, child_path, node);
      } else {
        Warn(child_path + ": not a regular file, skipping");
      }
    }
    for (const std::string& name : deferred) {
      if (!limits_.keep_deferred || limits_.keep_deferred(node, name)) {
        ReadProperty(fd, name.c_str(), path + "/" + name, node);
      }
    }
    // The kernel synthesises a `name` property from the node name; the blob has none.
    if (const std::string* n = node.Property("name");
        n != nullptr && *n == node.BaseName() + '\0') {
      node.properties.erase("name");
    }
    SortChildren(node);
  }

  void ReadProperty(int dir_fd, const char* name, const std::string& path, DtNode& node) {
    int fd = ::openat(dir_fd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) {
      Warn(path + ": " + std::strerror(errno) + ", skipping property");
      return;
    }
    std::string bytes;
    char buf[4096];
    while (true) {
      ssize_t n = ::read(fd, buf, sizeof buf);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) {
        Warn(path + ": " + std::strerror(errno) + ", skipping property");
        ::close(fd);
        return;
      }
      if (n == 0) break;
      bytes.append(buf, static_cast<size_t>(n));
      if (bytes.size() > limits_.max_property_bytes) {
        Warn(path + ": property larger than " + std::to_string(limits_.max_property_bytes) +
             " bytes, skipping");
        ::close(fd);
        return;
      }
    }
    ::close(fd);
    node.properties[name] = std::move(bytes);
  }

  std::vector<std::string>* warnings_;
  DtLimits limits_;
  std::set<std::pair<dev_t, ino_t>> visited_;
  size_t node_count_ = 0;
};

std::string FdtErrorText(int err) { return fdt_strerror(err); }

class BlobReader {
 public:
  BlobReader(const void* fdt, std::string_view source, const DtLimits& limits)
      : fdt_(fdt), source_(source), limits_(limits) {}

  Result<DtNode> Read() {
    DtNode root;
    if (auto status = ReadNode(0, root, 0); !status) return status.error();
    return root;
  }

 private:
  Status ReadNode(int offset, DtNode& node, int depth) {
    if (depth > limits_.max_depth) {
      return Error{source_ + ": nodes nested deeper than " + std::to_string(limits_.max_depth) +
                   " levels"};
    }
    if (++node_count_ > limits_.max_nodes) {
      return Error{source_ + ": more than " + std::to_string(limits_.max_nodes) + " nodes"};
    }
    int len = 0;
    const char* name = fdt_get_name(fdt_, offset, &len);
    if (name == nullptr) return Error{source_ + ": " + FdtErrorText(len)};
    node.name.assign(name, static_cast<size_t>(len));

    int prop = 0;
    fdt_for_each_property_offset(prop, fdt_, offset) {
      const char* prop_name = nullptr;
      int prop_len = 0;
      const void* value = fdt_getprop_by_offset(fdt_, prop, &prop_name, &prop_len);
      if (value == nullptr || prop_name == nullptr) {
        return Error{source_ + ": bad property in node '" + node.name +
                     "': " + FdtErrorText(prop_len)};
      }
      if (limits_.keep_property && !limits_.keep_property(prop_name)) continue;
      node.properties[prop_name] =
          std::string(static_cast<const char*>(value), static_cast<size_t>(prop_len));
    }
    if (prop < 0 && prop != -FDT_ERR_NOTFOUND) {
      return Error{source_ + ": bad properties in node '" + node.name + "': " + FdtErrorText(prop)};
    }
    int child = 0;
    fdt_for_each_subnode(child, fdt_, offset) {
      DtNode c;
      if (auto status = ReadNode(child, c, depth + 1); !status) return status;
      node.children.push_back(std::move(c));
    }
    if (child < 0 && child != -FDT_ERR_NOTFOUND) {
      return Error{source_ + ": bad subnodes of '" + node.name + "': " + FdtErrorText(child)};
    }
    SortChildren(node);
    return Ok{};
  }

  const void* fdt_;
  std::string source_;
  DtLimits limits_;
  size_t node_count_ = 0;
};

}  // namespace

Result<DtNode> ReadDeviceTreeDir(const fs::path& dir, std::vector<std::string>* warnings,
                                 const DtLimits& limits) {
  return DirReader(warnings, limits).ReadRoot(dir);
}

Result<DtNode> ParseDeviceTreeBlob(std::string_view blob, std::string_view source,
                                   const DtLimits& limits) {
  std::string src(source);
  if (blob.size() < sizeof(fdt_header)) {
    return Error{src + ": " + std::to_string(blob.size()) +
                 " bytes is too short for a flattened devicetree header"};
  }
  // libfdt reads the header fields in place; copy into aligned storage first.
  // (operator new returns storage aligned for any fundamental type).
  std::vector<char> aligned(blob.begin(), blob.end());
  const void* fdt = aligned.data();
  if (fdt_magic(fdt) != FDT_MAGIC) {
    char magic[16];
    std::snprintf(magic, sizeof magic, "0x%08x", fdt_magic(fdt));
    return Error{src + ": bad magic " + magic +
                 ", not a flattened devicetree (expected 0xd00dfeed)"};
  }
  if (fdt_totalsize(fdt) > blob.size()) {
    return Error{src + ": header says " + std::to_string(fdt_totalsize(fdt)) +
                 " bytes but the blob has " + std::to_string(blob.size()) + " (truncated?)"};
  }
  // fdt_check_full validates every offset and tag against the buffer, so the walk below can
  // trust what it reads even from a hostile blob.
  if (int err = fdt_check_full(fdt, blob.size()); err != 0) {
    return Error{src + ": malformed devicetree blob: " + FdtErrorText(err)};
  }
  return BlobReader(fdt, src, limits).Read();
}

Result<DtNode> ReadDeviceTreeBlobFile(const fs::path& file, const DtLimits& limits) {
  // Real blobs are well under a megabyte; the cap stops `--dtb /dev/zero` from eating memory.
  constexpr size_t kMaxBlobBytes = 64 << 20;
  int fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return Error{file.string() + ": cannot open: " + std::strerror(errno)};
  std::unique_ptr<int, void (*)(int*)> closer(&fd, [](int* f) { ::close(*f); });
  struct stat st {};
  if (::fstat(fd, &st) == 0 && S_ISDIR(st.st_mode)) {
    return Error{file.string() + ": is a directory, expected a .dtb file"};
  }
  std::string data;
  char buf[65536];
  while (true) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Error{file.string() + ": read error: " + std::strerror(errno)};
    if (n == 0) break;
    data.append(buf, static_cast<size_t>(n));
    if (data.size() > kMaxBlobBytes) {
      return Error{file.string() + ": larger than " + std::to_string(kMaxBlobBytes >> 20) +
                   " MiB, not a devicetree blob"};
    }
  }
  return ParseDeviceTreeBlob(data, file.string(), limits);
}

std::vector<std::string> DefaultDtNodeNames() { return {"cpu", "gpu", "npu"}; }

BoardInfo ExtractBoard(const DtNode& root) {
  BoardInfo board;
  board.model = root.String("model").value_or("");
  board.compatible = root.Strings("compatible");
  return board;
}

namespace {

// "cpu@0", "cpu", and "cpu0" / "cpu12" match "cpu"; "cpus" and "cpu-map" do not.
bool NameMatches(const std::string& node_name, const std::string& wanted) {
  std::string base = node_name.substr(0, node_name.find('@'));
  if (base.compare(0, wanted.size(), wanted) != 0) return false;
  std::string_view rest = std::string_view(base).substr(wanted.size());
  return std::all_of(rest.begin(), rest.end(), [](char c) { return c >= '0' && c <= '9'; });
}

bool IsOverlayBookkeeping(const std::string& name) {
  return name == "__symbols__" || name == "__fixups__" || name == "__local_fixups__" ||
         name == "aliases" || name == "chosen";
}

void Walk(const DtNode& node, const std::string& path, const std::vector<std::string>& names,
          std::vector<DtNodeInfo>& out) {
  for (const DtNode& child : node.children) {
    if (IsOverlayBookkeeping(child.name) || !child.Enabled()) continue;
    std::string child_path = (path == "/" ? "/" : path + "/") + child.name;
    bool wanted = std::any_of(names.begin(), names.end(),
                              [&](const std::string& n) { return NameMatches(child.name, n); });
    if (wanted) {
      out.push_back(DtNodeInfo{child_path, child.BaseName(), child.Strings("compatible")});
    }
    Walk(child, child_path, names, out);
  }
}

}  // namespace

std::vector<DtNodeInfo> ExtractNamedNodes(const DtNode& root,
                                          const std::vector<std::string>& names) {
  std::vector<DtNodeInfo> out;
  Walk(root, "/", names, out);
  return out;
}

}  // namespace edgefd
