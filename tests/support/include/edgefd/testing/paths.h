#pragma once

// Where the tests find the repository's fixtures and the binaries they run. One place: the
// paths are compiled into tests/support/src/paths.cc.

#include <filesystem>
#include <string>

namespace edgefd::testing {

/// The repository.
std::filesystem::path SourceDir();
/// The build tree (tools the tests build themselves go there).
std::filesystem::path BinaryDir();
/// Fixtures written for the project (`testdata/`).
std::filesystem::path TestdataDir();
/// Fixtures CMake builds (the .dts of testdata/dt compiled by dtc).
std::filesystem::path TestdataBin();
/// `../shared/devicetrees`: real blobs; tests that use them skip when it does not exist.
std::filesystem::path SharedDevicetrees();
/// `manifests/`.
std::filesystem::path ManifestsDir();
/// The programs under test, as built.
std::string LabellerBin();
std::string DevicePluginBin();
std::string PipelineBin();
/// umockdev's preload library (LD_PRELOAD for processes that run against a testbed).
std::string UmockdevPreload();

}  // namespace edgefd::testing
