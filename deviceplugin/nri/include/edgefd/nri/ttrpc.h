#pragma once

// The wire under NRI, without I/O: NRI's connection multiplexer and ttrpc's message frames,
// as decoders fed with bytes and encoders that return them (so tests and the fuzzer drive the
// same code the plugin runs).
//
// One unix socket (the "trunk") carries several logical connections. Each mux frame is
//   conn ID (uint32, big-endian; 0 is reserved) | payload length (uint32, big-endian) | payload
// and the payloads of one conn ID, concatenated, are a byte stream of ttrpc messages:
//   data length (uint32 BE, at most 4 MiB) | stream ID (uint32 BE) | type (u8) | flags (u8) | data
// Conn 1 carries the runtime's calls to the plugin (the runtime is the ttrpc client), conn 2 the
// plugin's calls to the runtime (RegisterPlugin, UpdateContainers). Formats: pkg/net/multiplex
// of github.com/containerd/nri and channel.go / PROTOCOL.md of github.com/containerd/ttrpc.
//
// Every byte comes from another process: lengths are capped before anything is allocated, and
// a violation is an Error after which the caller closes the trunk.

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "edgefd/common/result.h"

namespace edgefd::nri {

/// The logical connections on the trunk.
inline constexpr uint32_t kPluginServiceConn = 1;   ///< the runtime calls the plugin
inline constexpr uint32_t kRuntimeServiceConn = 2;  ///< the plugin calls the runtime

/// ttrpc's limit on a message's data, and its header size.
inline constexpr size_t kTtrpcMaxData = 4u << 20;
inline constexpr size_t kTtrpcHeaderSize = 10;
/// The largest mux payload a peer may send: one whole ttrpc message (what NRI's mux writes).
inline constexpr size_t kMuxMaxPayload = kTtrpcHeaderSize + kTtrpcMaxData;
inline constexpr size_t kMuxHeaderSize = 8;

/// ttrpc message types.
enum class MessageType : uint8_t { kRequest = 1, kResponse = 2, kData = 3 };

/// gRPC status codes ttrpc's Response carries (the ones the plugin answers with).
inline constexpr int kStatusOk = 0;
inline constexpr int kStatusInvalidArgument = 3;
inline constexpr int kStatusUnimplemented = 12;
inline constexpr int kStatusInternal = 13;

/// One mux frame's payload, for conn `conn`.
struct MuxFrame {
  uint32_t conn = 0;
  std::string payload;
};

/// One ttrpc message.
struct TtrpcMessage {
  uint32_t stream = 0;
  uint8_t type = 0;  ///< a MessageType, or what the peer sent (unknown types reach the caller)
  uint8_t flags = 0;
  std::string data;
};

/// Splits the trunk's bytes into mux frames. Feed any chunking; Next returns each complete
/// frame once. A payload over kMuxMaxPayload or conn ID 0 is an Error (and stays one).
class MuxDecoder {
 public:
  void Feed(std::string_view bytes) { buffer_.append(bytes); }
  /// The next complete frame, nullopt when more bytes are needed, or the violation.
  Result<std::optional<MuxFrame>> Next();
  /// Bytes received but not yet returned (a frame cut off when the peer closed).
  size_t pending() const { return buffer_.size() - offset_; }

 private:
  std::string buffer_;
  size_t offset_ = 0;
  std::optional<Error> error_;
};

/// Splits one logical connection's byte stream into ttrpc messages, like MuxDecoder. Data over
/// kTtrpcMaxData is an Error; the type is not judged here (the caller knows which it expects).
class TtrpcDecoder {
 public:
  void Feed(std::string_view bytes) { buffer_.append(bytes); }
  Result<std::optional<TtrpcMessage>> Next();
  size_t pending() const { return buffer_.size() - offset_; }

 private:
  std::string buffer_;
  size_t offset_ = 0;
  std::optional<Error> error_;
};

/// A ttrpc message's bytes. `data` must be at most kTtrpcMaxData (the caller checks: an Error).
Result<std::string> EncodeTtrpc(uint32_t stream, MessageType type, uint8_t flags,
                                std::string_view data);

/// The mux frames carrying `bytes` on `conn`, split at kMuxMaxPayload.
std::string EncodeMux(uint32_t conn, std::string_view bytes);

}  // namespace edgefd::nri
