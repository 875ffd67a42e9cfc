#include "edgefd/testing/paths.h"

namespace edgefd::testing {

std::filesystem::path SourceDir() { return EDGEFD_SOURCE_DIR; }
std::filesystem::path BinaryDir() { return EDGEFD_BINARY_DIR; }
std::filesystem::path TestdataDir() { return EDGEFD_TESTDATA_DIR; }
std::filesystem::path TestdataBin() { return EDGEFD_TESTDATA_BIN; }
std::filesystem::path SharedDevicetrees() {
  return std::filesystem::path(EDGEFD_SHARED_DIR) / "devicetrees";
}
std::filesystem::path ManifestsDir() { return SourceDir() / "manifests"; }
std::string LabellerBin() { return EDGEFD_LABELLER_BIN; }
std::string DevicePluginBin() { return EDGEFD_DEVICEPLUGIN_BIN; }
std::string PipelineBin() { return EDGEFD_PIPELINE_BIN; }
std::string UmockdevPreload() { return EDGEFD_UMOCKDEV_PRELOAD; }

}  // namespace edgefd::testing
