#include "edgefd/nri/ttrpc.h"

#include <fmt/format.h>

#include <algorithm>

namespace edgefd::nri {
namespace {

uint32_t ReadBigEndian32(std::string_view bytes) {
  return (uint32_t{static_cast<uint8_t>(bytes[0])} << 24) |
         (uint32_t{static_cast<uint8_t>(bytes[1])} << 16) |
         (uint32_t{static_cast<uint8_t>(bytes[2])} << 8) | uint32_t{static_cast<uint8_t>(bytes[3])};
}

void AppendBigEndian32(std::string& out, uint32_t value) {
  out.push_back(static_cast<char>(value >> 24));
  out.push_back(static_cast<char>(value >> 16));
  out.push_back(static_cast<char>(value >> 8));
  out.push_back(static_cast<char>(value));
}

// Drops what was consumed once it is most of the buffer, so a long-lived decoder stays small
// without moving bytes after every frame.
void Compact(std::string& buffer, size_t& offset) {
  if (offset == buffer.size()) {
    buffer.clear();
    offset = 0;
  } else if (offset > 64 * 1024 && offset * 2 > buffer.size()) {
    buffer.erase(0, offset);
    offset = 0;
  }
}

}  // namespace

Result<std::optional<MuxFrame>> MuxDecoder::Next() {
  if (error_) return *error_;
  std::string_view rest = std::string_view(buffer_).substr(offset_);
  if (rest.size() < kMuxHeaderSize) return std::optional<MuxFrame>();
  const uint32_t conn = ReadBigEndian32(rest);
  const uint32_t length = ReadBigEndian32(rest.substr(4));
  if (conn == 0) {
    error_ = Error{"NRI mux: frame for the reserved connection 0"};
    return *error_;
  }
  if (length > kMuxMaxPayload) {
    error_ = Error{fmt::format("NRI mux: frame of {} bytes on connection {}, over the limit of {}",
                               length, conn, kMuxMaxPayload)};
    return *error_;
  }
  if (rest.size() - kMuxHeaderSize < length) return std::optional<MuxFrame>();
  MuxFrame frame{conn, std::string(rest.substr(kMuxHeaderSize, length))};
  offset_ += kMuxHeaderSize + length;
  Compact(buffer_, offset_);
  return std::optional<MuxFrame>(std::move(frame));
}

Result<std::optional<TtrpcMessage>> TtrpcDecoder::Next() {
  if (error_) return *error_;
  std::string_view rest = std::string_view(buffer_).substr(offset_);
  if (rest.size() < kTtrpcHeaderSize) return std::optional<TtrpcMessage>();
  const uint32_t length = ReadBigEndian32(rest);
  if (length > kTtrpcMaxData) {
    error_ = Error{
        fmt::format("ttrpc: message of {} bytes, over the limit of {}", length, kTtrpcMaxData)};
    return *error_;
  }
  if (rest.size() - kTtrpcHeaderSize < length) return std::optional<TtrpcMessage>();
  TtrpcMessage message;
  message.stream = ReadBigEndian32(rest.substr(4));
  message.type = static_cast<uint8_t>(rest[8]);
  message.flags = static_cast<uint8_t>(rest[9]);
  message.data = std::string(rest.substr(kTtrpcHeaderSize, length));
  offset_ += kTtrpcHeaderSize + length;
  Compact(buffer_, offset_);
  return std::optional<TtrpcMessage>(std::move(message));
}

Result<std::string> EncodeTtrpc(uint32_t stream, MessageType type, uint8_t flags,
                                std::string_view data) {
  if (data.size() > kTtrpcMaxData) {
    return Error{fmt::format("ttrpc: message of {} bytes, over the limit of {}", data.size(),
                             kTtrpcMaxData)};
  }
  std::string out;
  out.reserve(kTtrpcHeaderSize + data.size());
  AppendBigEndian32(out, static_cast<uint32_t>(data.size()));
  AppendBigEndian32(out, stream);
  out.push_back(static_cast<char>(type));
  out.push_back(static_cast<char>(flags));
  out.append(data);
  return out;
}

std::string EncodeMux(uint32_t conn, std::string_view bytes) {
  std::string out;
  out.reserve(bytes.size() + kMuxHeaderSize * (1 + bytes.size() / kMuxMaxPayload));
  do {
    const size_t size = std::min(bytes.size(), kMuxMaxPayload);
    AppendBigEndian32(out, conn);
    AppendBigEndian32(out, static_cast<uint32_t>(size));
    out.append(bytes.substr(0, size));
    bytes.remove_prefix(size);
  } while (!bytes.empty());
  return out;
}

}  // namespace edgefd::nri
