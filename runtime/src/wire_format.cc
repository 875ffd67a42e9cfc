// Activation encodings between stages (wire_format.h): float16 by bit manipulation (portable
// to every target the runtime builds for), int8 with one scale per tensor, and the writer and
// reader that put them above any transport.
#include "edgefd/runtime/wire_format.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <utility>

namespace edgefd::runtime {
namespace {

uint16_t FloatToHalf(float f) {
  uint32_t x;
  std::memcpy(&x, &f, sizeof x);
  const uint16_t sign = uint16_t((x >> 16) & 0x8000u);
  const uint32_t abs = x & 0x7fffffffu;
  if (abs > 0x7f800000u) return sign | 0x7e00u;   // NaN stays NaN
  if (abs >= 0x477fe000u) return sign | 0x7bffu;  // 65504 and beyond (infinity): saturate
  if (abs < 0x38800000u) {
    // Below the smallest normal half (2^-14): a subnormal, rounded to nearest even by lrintf
    // (the multiplication by 2^24 is exact).
    float a;
    std::memcpy(&a, &abs, sizeof a);
    return sign | uint16_t(std::lrintf(a * 16777216.0f));
  }
  // Rebias the exponent (127 -> 15) and round the mantissa to nearest even.
  const uint32_t rounded = abs + 0xfffu + ((abs >> 13) & 1u);
  return sign | uint16_t((rounded - 0x38000000u) >> 13);
}

float HalfToFloat(uint16_t h) {
  const uint32_t sign = uint32_t(h & 0x8000u) << 16;
  const uint32_t exp = (h >> 10) & 0x1fu;
  const uint32_t man = h & 0x3ffu;
  if (exp == 0) {
    const float v = float(man) * (1.0f / 16777216.0f);
    return sign ? -v : v;
  }
  const uint32_t bits = sign | (exp == 31 ? 0x7f800000u : (exp + 112) << 23) | (man << 13);
  float f;
  std::memcpy(&f, &bits, sizeof f);
  return f;
}

/// Encodes into the inner link's buffer and sends there.
class EncodingFrameWriter final : public FrameWriter {
 public:
  EncodingFrameWriter(std::unique_ptr<FrameWriter> inner, Shape shape, WireFormat format)
      : inner_(std::move(inner)),
        shape_(shape),
        wire_shape_(WireShape(shape, format)),
        format_(format),
        staging_(shape.Elements()) {}

  float* Buffer() override { return staging_.data(); }
  Status Publish(const FrameMeta& meta) override { return PublishFrom(meta, staging_.data()); }
  Status PublishFrom(const FrameMeta& meta, const float* data) override {
    EncodeWire(format_, data, shape_.Elements(), inner_->Buffer());
    FrameMeta wire = meta;
    wire.shape = wire_shape_;
    Status s = inner_->Publish(wire);
    if (!s && inner_->Fault()) fault_ = inner_->Fault();
    return s;
  }
  Status Close() override { return inner_->Close(); }
  uint64_t Drops() const override { return inner_->Drops(); }
  uint64_t Reconnects() const override { return inner_->Reconnects(); }

 private:
  void OnAbort() override { inner_->Abort(); }

  std::unique_ptr<FrameWriter> inner_;
  Shape shape_, wire_shape_;
  WireFormat format_;
  runtime::Buffer staging_;
};

class DecodingFrameReader final : public FrameReader {
 public:
  DecodingFrameReader(std::unique_ptr<FrameReader> inner, Shape shape, WireFormat format)
      : inner_(std::move(inner)),
        shape_(shape),
        wire_shape_(WireShape(shape, format)),
        format_(format),
        decoded_(shape.Elements()) {}

  ReadResult Next(FrameMeta* meta, const float** data, std::chrono::milliseconds timeout) override {
    const float* wire = nullptr;
    ReadResult r = inner_->Next(meta, &wire, timeout);
    if (r == ReadResult::kBroken) fault_ = inner_->Fault();
    if (r != ReadResult::kFrame) return r;
    if (!(meta->shape == wire_shape_)) {
      return Broken("a frame of " + meta->shape.ToString() + ", expected " +
                    wire_shape_.ToString() + " (" + WireFormatName(format_) + " " +
                    shape_.ToString() + "): do both ends use the same --wire format?");
    }
    if (!DecodeWire(format_, wire, shape_.Elements(), decoded_.data())) {
      return Broken("an int8 frame whose scale is not a finite non-negative number");
    }
    meta->shape = shape_;
    *data = decoded_.data();
    return ReadResult::kFrame;
  }
  uint64_t Drops() const override { return inner_->Drops(); }
  std::string Address() const override { return inner_->Address(); }

 private:
  ReadResult Broken(const std::string& what) {
    fault_ = Error{inner_->Address() + ": " + what};
    return ReadResult::kBroken;
  }

  std::unique_ptr<FrameReader> inner_;
  Shape shape_, wire_shape_;
  WireFormat format_;
  runtime::Buffer decoded_;
};

}  // namespace

std::string WireFormatName(WireFormat format) {
  switch (format) {
    case WireFormat::kFloat16:
      return "float16";
    case WireFormat::kInt8:
      return "int8";
    default:
      return "float32";
  }
}

std::optional<WireFormat> ParseWireFormat(const std::string& name) {
  if (name == "float32" || name == "f32") return WireFormat::kFloat32;
  if (name == "float16" || name == "f16" || name == "fp16") return WireFormat::kFloat16;
  if (name == "int8") return WireFormat::kInt8;
  return std::nullopt;
}

size_t WireBytes(WireFormat format, size_t elements) {
  switch (format) {
    case WireFormat::kFloat16:
      return 2 * elements;
    case WireFormat::kInt8:
      return sizeof(float) + elements;
    default:
      return sizeof(float) * elements;
  }
}

Shape WireShape(Shape shape, WireFormat format) {
  if (format == WireFormat::kFloat32) return shape;
  const size_t floats = (WireBytes(format, shape.Elements()) + sizeof(float) - 1) / sizeof(float);
  return Shape{1, int(floats), 1};
}

double WireErrorBound(WireFormat format) {
  switch (format) {
    case WireFormat::kFloat16:
      return 1.0 / 2048.0;
    case WireFormat::kInt8:
      return 1.0 / 254.0;
    default:
      return 0.0;
  }
}

void EncodeWire(WireFormat format, const float* in, size_t n, void* out) {
  if (format == WireFormat::kFloat32) {
    std::memcpy(out, in, n * sizeof(float));
  } else if (format == WireFormat::kFloat16) {
    auto* h = static_cast<uint8_t*>(out);
    for (size_t i = 0; i < n; ++i) {
      const uint16_t v = FloatToHalf(in[i]);
      std::memcpy(h + 2 * i, &v, sizeof v);
    }
  } else {
    float max_abs = 0;
    for (size_t i = 0; i < n; ++i) {
      if (std::isfinite(in[i])) max_abs = std::max(max_abs, std::fabs(in[i]));
    }
    const float scale = max_abs / 127.0f;
    const float inv = max_abs > 0 ? 127.0f / max_abs : 0.0f;
    auto* bytes = static_cast<uint8_t*>(out);
    std::memcpy(bytes, &scale, sizeof scale);
    auto* q = reinterpret_cast<int8_t*>(bytes + sizeof scale);
    for (size_t i = 0; i < n; ++i) {
      const float v = std::isfinite(in[i]) ? in[i] * inv : 0.0f;
      q[i] = int8_t(std::lrintf(std::clamp(v, -127.0f, 127.0f)));
    }
  }
}

bool DecodeWire(WireFormat format, const void* in, size_t n, float* out) {
  if (format == WireFormat::kFloat32) {
    std::memcpy(out, in, n * sizeof(float));
  } else if (format == WireFormat::kFloat16) {
    const auto* h = static_cast<const uint8_t*>(in);
    for (size_t i = 0; i < n; ++i) {
      uint16_t v;
      std::memcpy(&v, h + 2 * i, sizeof v);
      out[i] = HalfToFloat(v);
    }
  } else {
    const auto* bytes = static_cast<const uint8_t*>(in);
    float scale;
    std::memcpy(&scale, bytes, sizeof scale);
    if (!std::isfinite(scale) || scale < 0) return false;
    const auto* q = reinterpret_cast<const int8_t*>(bytes + sizeof scale);
    for (size_t i = 0; i < n; ++i) out[i] = float(q[i]) * scale;
  }
  return true;
}

std::unique_ptr<FrameWriter> EncodingWriter(std::unique_ptr<FrameWriter> inner, Shape shape,
                                            WireFormat format) {
  if (format == WireFormat::kFloat32) return inner;
  return std::make_unique<EncodingFrameWriter>(std::move(inner), shape, format);
}

std::unique_ptr<FrameReader> DecodingReader(std::unique_ptr<FrameReader> inner, Shape shape,
                                            WireFormat format) {
  if (format == WireFormat::kFloat32) return inner;
  return std::make_unique<DecodingFrameReader>(std::move(inner), shape, format);
}

Result<std::unique_ptr<FrameReader>> OpenWireReader(const std::string& address, Shape shape,
                                                    WireFormat format, Policy policy,
                                                    const LinkSecurity& tls) {
  auto inner = OpenReader(address, WireShape(shape, format), policy, tls);
  if (!inner) return inner.error();
  return DecodingReader(std::move(*inner), shape, format);
}

Result<std::unique_ptr<FrameWriter>> OpenWireWriter(const std::string& address, Shape shape,
                                                    WireFormat format, Policy policy,
                                                    std::chrono::milliseconds reconnect_timeout,
                                                    const LinkSecurity& tls) {
  auto inner = OpenWriter(address, WireShape(shape, format), policy, reconnect_timeout, tls);
  if (!inner) return inner.error();
  return EncodingWriter(std::move(*inner), shape, format);
}

}  // namespace edgefd::runtime
