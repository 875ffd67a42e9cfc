#pragma once

// Test helpers for the udev tests: the umockdev fixture, and the child processes they run
// (edgefd/testing/process.h).

#include <gtest/gtest.h>

#include <cctype>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "edgefd/testing/process.h"
#include "edgefd/testing/umockdev_testbed.h"

namespace edgefd::testing {

/// Skips the test unless umockdev's preload library is active (ctest sets LD_PRELOAD).
#define EDGEFD_REQUIRE_UMOCKDEV()                                                        \
  do {                                                                                   \
    const char* preload = getenv("LD_PRELOAD");                                          \
    if (preload == nullptr || strstr(preload, "libumockdev-preload") == nullptr) {       \
      GTEST_SKIP() << "needs umockdev's preload: run through ctest or umockdev-wrapper"; \
    }                                                                                    \
  } while (0)

/// A fixture with a testbed holding host.umockdev (PCI host bridge, xHCI, USB root hub).
class HostTestbedTest : public ::testing::Test {
 protected:
  void SetUp() override {
    EDGEFD_REQUIRE_UMOCKDEV();
    tb_ = std::make_unique<Testbed>();
    ASSERT_TRUE(tb_->Plug("host.umockdev"));
  }
  std::unique_ptr<Testbed> tb_;
};

/// A gtest parameter name from a testdata file name ("ncs2-pair.umockdev" -> "ncs2_pair").
inline std::string FileParamName(const char* file) {
  std::string name = file != nullptr ? file : "host_only";
  name = name.substr(0, name.find('.'));
  for (char& c : name) {
    if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
  }
  return name;
}

/// Writes a devicetree node in the kernel's directory form (compatible, optional status).
inline void WriteDtNode(const std::filesystem::path& dir,
                        const std::vector<std::string>& compatible, const char* status = nullptr) {
  std::filesystem::create_directories(dir);
  std::string value;
  for (const std::string& c : compatible) value += c + '\0';
  std::ofstream(dir / "compatible", std::ios::binary) << value;
  if (status != nullptr) std::ofstream(dir / "status", std::ios::binary) << status << '\0';
}

}  // namespace edgefd::testing
