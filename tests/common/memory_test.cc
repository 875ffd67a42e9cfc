#include "edgefd/common/memory.h"

#include <dlfcn.h>
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>
#include <string>
#include <string_view>

namespace edgefd {
namespace {

bool Listed(std::string_view path) {
  const std::string_view name = path.substr(path.rfind('/') + 1);
  for (size_t i = 0; i < kUnusedLibraryCount; ++i) {
    if (name.starts_with(kUnusedLibraries[i])) return true;
  }
  return false;
}

// KiB resident in the read-only mappings of the listed libraries that hold no copied page: what
// the release gives back. `mappings` counts those mappings.
long ResidentCleanKiB(int* mappings) {
  std::ifstream smaps("/proc/self/smaps");
  std::string line;
  bool candidate = false;
  long rss = 0, total = 0;
  *mappings = 0;
  auto close = [&](long anonymous) {
    if (candidate && anonymous == 0) {
      total += rss;
      ++*mappings;
    }
    candidate = false;
  };
  while (std::getline(smaps, line)) {
    std::istringstream in(line);
    std::string range, perms, offset, dev, inode, path;
    if (line.find('-') < line.find(' ') && (in >> range >> perms >> offset >> dev >> inode)) {
      in >> path;
      candidate = !path.empty() && path[0] == '/' && perms[1] != 'w' && Listed(path);
      rss = 0;
      continue;
    }
    if (line.rfind("Rss:", 0) == 0) rss = std::stol(line.substr(4));
    if (line.rfind("Anonymous:", 0) == 0) close(std::stol(line.substr(10)));
  }
  return total;
}

// libcurl4 loads GnuTLS, Kerberos, LDAP, ... which edgefd never calls; the loader touched their
// pages, and the release unmaps every clean one of them (a later touch maps it again from the
// page cache: nothing is lost).
TEST(ReleaseStartUpMemory, LeavesNoCleanPageOfAnUnusedLibraryResident) {
  void* curl = dlopen("libcurl.so.4", RTLD_NOW | RTLD_LOCAL);
  if (curl == nullptr) GTEST_SKIP() << "libcurl.so.4 is not installed: " << dlerror();
  int mappings = 0;
  EXPECT_GT(ResidentCleanKiB(&mappings), 0);
  ASSERT_GT(mappings, 0) << "none of kUnusedLibraries is loaded with libcurl";
  ReleaseStartUpMemory();
  EXPECT_EQ(ResidentCleanKiB(&mappings), 0);
  // The libraries still work after the release: libcurl calls into them as it starts.
  using VersionFn = const char* (*)();
  auto version = reinterpret_cast<VersionFn>(dlsym(curl, "curl_version"));
  ASSERT_NE(version, nullptr);
  EXPECT_NE(std::string(version()).find("libcurl"), std::string::npos);
}

}  // namespace
}  // namespace edgefd
