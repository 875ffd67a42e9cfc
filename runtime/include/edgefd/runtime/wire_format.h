#pragma once

// How activations travel between two stages (DESIGN.md, "Runtime contract", Planner): float32
// as computed, float16 (half the bytes), or int8 with one scale per tensor (a quarter). The
// encoding sits above the transport: a link carries an encoded frame as a packed frame of
// WireShape(), and the receiving end decodes it back to the stage's input shape.

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "edgefd/runtime/transport.h"

namespace edgefd::runtime {

enum class WireFormat { kFloat32, kFloat16, kInt8 };

/// "float32", "float16", "int8", and back (also "f32", "f16", "fp16").
std::string WireFormatName(WireFormat format);
std::optional<WireFormat> ParseWireFormat(const std::string& name);

/// Bytes one frame of `elements` floats takes on the wire (int8: a float scale, then a byte
/// per element).
size_t WireBytes(WireFormat format, size_t elements);
/// The frame a link carries for `shape` in `format`: the shape itself for float32, else one
/// row of floats holding WireBytes (rounded up to whole floats).
Shape WireShape(Shape shape, WireFormat format);
/// The worst error of one element after a round trip, relative to the tensor's largest
/// magnitude: 0 (float32), 2^-11 (float16, within its range), 1/254 (int8).
double WireErrorBound(WireFormat format);

/// Encodes `n` floats into `out` (WireBytes(format, n) bytes). Non-finite inputs become 0 for
/// int8; float16 saturates to +-65504.
void EncodeWire(WireFormat format, const float* in, size_t n, void* out);
/// Decodes what EncodeWire wrote. False (and `out` untouched past what was decoded) when the
/// int8 scale is not a finite non-negative number: bytes from another party.
bool DecodeWire(WireFormat format, const void* in, size_t n, float* out);

/// A writer that encodes frames of `shape` into `inner`, which must carry WireShape(shape,
/// format). float32 returns `inner` itself.
std::unique_ptr<FrameWriter> EncodingWriter(std::unique_ptr<FrameWriter> inner, Shape shape,
                                            WireFormat format);
/// A reader that decodes `inner`'s frames of WireShape(shape, format) back to `shape`. A frame
/// of another shape or with a bad scale breaks the link (kBroken, Fault() names it).
std::unique_ptr<FrameReader> DecodingReader(std::unique_ptr<FrameReader> inner, Shape shape,
                                            WireFormat format);

/// OpenReader / OpenWriter (transport.h) for frames of `shape` sent in `format`.
Result<std::unique_ptr<FrameReader>> OpenWireReader(const std::string& address, Shape shape,
                                                    WireFormat format, Policy policy,
                                                    const LinkSecurity& tls = {});
Result<std::unique_ptr<FrameWriter>> OpenWireWriter(const std::string& address, Shape shape,
                                                    WireFormat format, Policy policy,
                                                    std::chrono::milliseconds reconnect_timeout,
                                                    const LinkSecurity& tls = {});

}  // namespace edgefd::runtime
