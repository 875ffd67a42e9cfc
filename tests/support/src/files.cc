#include "edgefd/testing/files.h"

#include <stdlib.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <fstream>
#include <sstream>

#include "edgefd/common/files.h"

namespace edgefd::testing {

namespace fs = std::filesystem;

std::string UniqueName(std::string_view what) {
  static const std::string token = RandomHex(8);
  static std::atomic<unsigned> counter{0};
  return "edgefd-test-" + std::string(what) + "-" + std::to_string(getpid()) + "-" + token + "-" +
         std::to_string(counter++);
}

TempDir::TempDir() {
  fs::path base = fs::is_directory("/dev/shm") ? fs::path("/dev/shm") : fs::temp_directory_path();
  std::string tmpl = (base / "edgefd-test-XXXXXX").string();
  if (mkdtemp(tmpl.data()) == nullptr) std::abort();  // nothing a test could do without it
  path_ = tmpl;
}

TempDir::~TempDir() {
  std::error_code ec;
  fs::permissions(path_, fs::perms::owner_all, ec);  // a test may have made it unreadable
  fs::remove_all(path_, ec);
}

std::string TempDir::operator/(std::string_view name) const { return (path_ / name).string(); }

fs::path TempDir::Write(const std::string& name, const std::string& text) const {
  fs::path p = path_ / name;
  WriteFile(p, text);
  return p;
}

fs::path MakeTempDir(const std::string& prefix) {
  const char* base = std::getenv("TEST_TMPDIR");
  std::string tmpl =
      (fs::path(base != nullptr ? base : fs::temp_directory_path().c_str()) / (prefix + ".XXXXXX"))
          .string();
  if (mkdtemp(tmpl.data()) == nullptr) return {};
  return tmpl;
}

std::string ReadFile(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void WriteFile(const fs::path& path, const std::string& content) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << content;
}

ProjectedVolume::ProjectedVolume(std::filesystem::path dir) : dir_(std::move(dir)) {
  std::filesystem::create_directories(dir_);
}

void ProjectedVolume::Publish(const std::map<std::string, std::string>& files) {
  namespace fs = std::filesystem;
  const std::string generation = "..2026_12_05_00_00_00." + std::to_string(++generations_);
  fs::create_directories(dir_ / generation);
  for (const auto& [name, content] : files) WriteFile(dir_ / generation / name, content);
  fs::create_directory_symlink(generation, dir_ / "..data_tmp");
  fs::rename(dir_ / "..data_tmp", dir_ / "..data");
  for (const auto& [name, content] : files) {
    if (!fs::is_symlink(dir_ / name)) fs::create_symlink(fs::path("..data") / name, dir_ / name);
  }
  if (!current_.empty()) fs::remove_all(dir_ / current_);
  current_ = generation;
}

}  // namespace edgefd::testing
