#pragma once

#include <filesystem>
#include <fstream>
#include <string>

namespace edgefd::testing {

/// Source fixtures (`testdata/`), fixtures built by CMake (compiled .dts), and shared/.
inline std::filesystem::path TestdataDir() { return EDGEFD_TESTDATA_DIR; }
inline std::filesystem::path TestdataBin() { return EDGEFD_TESTDATA_BIN; }
inline std::filesystem::path SharedDevicetrees() {
  return std::filesystem::path(EDGEFD_SHARED_DIR) / "devicetrees";
}
inline std::string LabellerBin() { return EDGEFD_LABELLER_BIN; }

/// A fresh directory removed when the object goes away.
class TempDir {
 public:
  /// In /dev/shm when it exists: tests that write thousands of small files run 30x faster
  /// on tmpfs than on this machine's overlay disk.
  TempDir() {
    std::filesystem::path base = std::filesystem::is_directory("/dev/shm")
                                     ? std::filesystem::path("/dev/shm")
                                     : std::filesystem::temp_directory_path();
    std::string tmpl = (base / "edgefd-test-XXXXXX").string();
    path_ = mkdtemp(tmpl.data());
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::permissions(path_, std::filesystem::perms::owner_all, ec);
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::filesystem::path& path() const { return path_; }
  /// Writes `text` to `name` inside the directory and returns its path.
  std::filesystem::path Write(const std::string& name, const std::string& text) const {
    std::filesystem::path p = path_ / name;
    std::ofstream(p) << text;
    return p;
  }

 private:
  std::filesystem::path path_;
};

}  // namespace edgefd::testing
