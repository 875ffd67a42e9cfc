// What the container runtime sends edgefd-nri over the NRI socket: mux frames carrying ttrpc
// messages carrying protobuf requests. The input is split at its first byte into the trunk's
// bytes, fed in chunks of varying size as the socket would deliver them; every message that
// decodes is parsed as the plugin parses it and answered by the service. Must never crash,
// hang or allocate past the frame limits. tests/nri/ttrpc_test.cc runs this same function over
// thousands of random and mutated inputs, so it holds without clang too.
#include <google/protobuf/stubs/logging.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "edgefd/nri/service.h"
#include "edgefd/nri/ttrpc.h"
#include "ttrpc/ttrpc.pb.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace edgefd::nri;
  // What the plugin would log about each bad input is not what is tested here, and writing it
  // would cost more than the decoding.
  static const bool quiet = [] {
    spdlog::set_level(spdlog::level::off);
    google::protobuf::SetLogHandler(nullptr);
    return true;
  }();
  (void)quiet;
  if (size == 0) return 0;
  const size_t chunk = 1 + data[0] % 97;
  std::string_view bytes(reinterpret_cast<const char*>(data) + 1, size - 1);
  // The record gives every core to a nameless container of a nameless pod (what a request
  // without a pod, or with empty names, is): such containers take the holder paths too.
  struct Record : AllocationRecord {
    edgefd::Result<HeldCores> Read() override { return HeldCores{{ContainerRef{}, {0, 1, 2, 3}}}; }
  } record;
  Metrics metrics;
  NriService service({0, 1, 2, 3}, Policy::kExclusive, metrics, record);
  MuxDecoder mux;
  TtrpcDecoder conns[2];
  while (!bytes.empty()) {
    mux.Feed(bytes.substr(0, chunk));
    bytes.remove_prefix(std::min(chunk, bytes.size()));
    for (;;) {
      auto frame = mux.Next();
      if (!frame || !*frame) break;
      TtrpcDecoder& conn = conns[(*frame)->conn == kPluginServiceConn ? 0 : 1];
      conn.Feed((*frame)->payload);
      for (;;) {
        auto message = conn.Next();
        if (!message || !*message) break;
        ::ttrpc::Request request;
        if (!request.ParseFromString((*message)->data)) continue;
        (void)service.Handle(request.service(), request.method(), request.payload());
      }
    }
    if (!mux.Next()) return 0;  // the plugin closes the connection here
  }
  return 0;
}
