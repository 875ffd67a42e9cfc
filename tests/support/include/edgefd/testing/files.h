#pragma once

// Temporary directories and whole-file helpers.

#include <filesystem>
#include <map>
#include <string>
#include <string_view>

namespace edgefd::testing {

/// A fresh directory, removed with everything in it when the object goes away. In /dev/shm
/// when it exists: tests that write thousands of small files run 30x faster on tmpfs than on
/// this machine's overlay disk, and its paths are short enough for unix sockets.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::filesystem::path& path() const { return path_; }
  /// The path of `name` inside the directory, as a string (for argv, addresses, variables).
  std::string operator/(std::string_view name) const;
  /// Writes `text` to `name` inside the directory and returns its path.
  std::filesystem::path Write(const std::string& name, const std::string& text) const;

 private:
  std::filesystem::path path_;
};

/// A directory laid out as the kubelet lays out a ConfigMap, Secret or projected volume (the
/// service account's token and ca.crt): each file is a symlink into `..data`, itself a symlink
/// to a timestamped directory; an update writes a new one, renames a new `..data` over the old
/// link and removes the old directory, as the kubelet's atomic writer does.
class ProjectedVolume {
 public:
  explicit ProjectedVolume(std::filesystem::path dir);
  const std::filesystem::path& path() const { return dir_; }
  /// Makes the volume hold exactly `files` (name -> content), atomically.
  void Publish(const std::map<std::string, std::string>& files);

 private:
  std::filesystem::path dir_;
  int generations_ = 0;
  std::string current_;
};

/// A new empty directory that outlives the test (a PKI shared by a whole suite), under
/// $TEST_TMPDIR or the system's temporary directory.
std::filesystem::path MakeTempDir(const std::string& prefix);
/// A name for something a test makes outside its TempDir (a /dev/shm ring, a network
/// namespace): "edgefd-test-<what>-<pid>-<token>-<n>", where the token is drawn once per test
/// process, so suites of several clones of the repository run side by side, and a name left
/// by a crashed run whose pid comes again is never met. `what` should be short (a ring name
/// becomes a file name; a network namespace's, an interface's prefix).
std::string UniqueName(std::string_view what);

/// Reads / writes a whole file.
std::string ReadFile(const std::filesystem::path& path);
void WriteFile(const std::filesystem::path& path, const std::string& content);

}  // namespace edgefd::testing
