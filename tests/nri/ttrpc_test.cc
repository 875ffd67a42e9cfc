#include "edgefd/nri/ttrpc.h"

#include <gtest/gtest.h>
#include <spdlog/spdlog.h>

#include <filesystem>
#include <random>

#include "edgefd/testing/files.h"
#include "edgefd/testing/paths.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

namespace edgefd::nri {
namespace {

namespace fs = std::filesystem;

std::string Header(uint32_t a, uint32_t b) {
  std::string out;
  for (uint32_t v : {a, b}) {
    for (int shift = 24; shift >= 0; shift -= 8) out.push_back(static_cast<char>(v >> shift));
  }
  return out;
}

std::string Ttrpc(uint32_t stream, MessageType type, std::string_view data) {
  Result<std::string> bytes = EncodeTtrpc(stream, type, 0, data);
  EXPECT_TRUE(bytes.ok());
  return bytes.ok() ? *bytes : "";
}

TEST(MuxDecoder, SplitsFramesFedByteByByte) {
  const std::string wire = EncodeMux(1, "hello") + EncodeMux(2, "") + EncodeMux(7, "world!");
  MuxDecoder decoder;
  std::vector<MuxFrame> frames;
  for (char c : wire) {
    decoder.Feed(std::string_view(&c, 1));
    for (;;) {
      auto frame = decoder.Next();
      ASSERT_TRUE(frame.ok()) << frame.error().message;
      if (!*frame) break;
      frames.push_back(std::move(**frame));
    }
  }
  ASSERT_EQ(frames.size(), 3u);
  EXPECT_EQ(frames[0].conn, 1u);
  EXPECT_EQ(frames[0].payload, "hello");
  EXPECT_EQ(frames[1].conn, 2u);
  EXPECT_EQ(frames[1].payload, "");
  EXPECT_EQ(frames[2].conn, 7u);
  EXPECT_EQ(frames[2].payload, "world!");
  EXPECT_EQ(decoder.pending(), 0u);
}

TEST(MuxDecoder, RefusesAnOversizeFrameBeforeItsPayloadArrives) {
  MuxDecoder decoder;
  decoder.Feed(Header(1, static_cast<uint32_t>(kMuxMaxPayload + 1)));
  auto frame = decoder.Next();
  ASSERT_FALSE(frame.ok());
  EXPECT_NE(frame.error().message.find("over the limit"), std::string::npos);
  // And it stays broken: the stream has lost its framing.
  decoder.Feed(EncodeMux(1, "ok"));
  EXPECT_FALSE(decoder.Next().ok());
}

TEST(MuxDecoder, TakesAFrameOfExactlyTheLimit) {
  MuxDecoder decoder;
  decoder.Feed(EncodeMux(1, std::string(kMuxMaxPayload, 'x')));
  auto frame = decoder.Next();
  ASSERT_TRUE(frame.ok());
  ASSERT_TRUE(*frame);
  EXPECT_EQ((*frame)->payload.size(), kMuxMaxPayload);
}

TEST(MuxDecoder, RefusesTheReservedConnection) {
  MuxDecoder decoder;
  decoder.Feed(Header(0, 1) + "x");
  auto frame = decoder.Next();
  ASSERT_FALSE(frame.ok());
  EXPECT_NE(frame.error().message.find("reserved"), std::string::npos);
}

TEST(MuxDecoder, WaitsOnATruncatedFrameAndCountsWhatIsPending) {
  // A peer that closes mid-frame leaves bytes pending and no frame: nothing is made up.
  const std::string wire = EncodeMux(1, "0123456789");
  MuxDecoder decoder;
  decoder.Feed(wire.substr(0, wire.size() - 3));
  auto frame = decoder.Next();
  ASSERT_TRUE(frame.ok());
  EXPECT_FALSE(*frame);
  EXPECT_EQ(decoder.pending(), wire.size() - 3);
}

TEST(EncodeMux, SplitsAMessageLargerThanOneFrame) {
  const std::string big(kMuxMaxPayload + 5, 'y');
  MuxDecoder decoder;
  decoder.Feed(EncodeMux(2, big));
  std::string joined;
  int frames = 0;
  for (;;) {
    auto frame = decoder.Next();
    ASSERT_TRUE(frame.ok());
    if (!*frame) break;
    EXPECT_EQ((*frame)->conn, 2u);
    joined += (*frame)->payload;
    ++frames;
  }
  EXPECT_EQ(frames, 2);
  EXPECT_EQ(joined, big);
}

TEST(TtrpcDecoder, ReadsMessagesAcrossArbitraryChunks) {
  const std::string wire = Ttrpc(1, MessageType::kRequest, "abc") +
                           Ttrpc(2, MessageType::kResponse, "") +
                           Ttrpc(5, MessageType::kData, std::string(1000, 'z'));
  TtrpcDecoder decoder;
  std::vector<TtrpcMessage> messages;
  for (size_t i = 0; i < wire.size(); i += 7) {
    decoder.Feed(std::string_view(wire).substr(i, 7));
    for (;;) {
      auto m = decoder.Next();
      ASSERT_TRUE(m.ok());
      if (!*m) break;
      messages.push_back(std::move(**m));
    }
  }
  ASSERT_EQ(messages.size(), 3u);
  EXPECT_EQ(messages[0].stream, 1u);
  EXPECT_EQ(messages[0].type, 1);
  EXPECT_EQ(messages[0].data, "abc");
  EXPECT_EQ(messages[1].type, 2);
  EXPECT_EQ(messages[1].data, "");
  EXPECT_EQ(messages[2].stream, 5u);
  EXPECT_EQ(messages[2].data.size(), 1000u);
}

TEST(TtrpcDecoder, RefusesDataOverFourMebibytes) {
  TtrpcDecoder decoder;
  std::string header = Header(static_cast<uint32_t>(kTtrpcMaxData + 1), 1);
  header += std::string("\x01\x00", 2);
  decoder.Feed(header);
  auto m = decoder.Next();
  ASSERT_FALSE(m.ok());
  EXPECT_NE(m.error().message.find("4194304"), std::string::npos);
}

TEST(TtrpcDecoder, HandsUnknownTypesToTheCallerUnjudged) {
  TtrpcDecoder decoder;
  std::string wire = Header(1, 3);
  wire += std::string("\x09\x00", 2) + "q";
  decoder.Feed(wire);
  auto m = decoder.Next();
  ASSERT_TRUE(m.ok());
  ASSERT_TRUE(*m);
  EXPECT_EQ((*m)->type, 9);
}

TEST(EncodeTtrpc, RefusesDataOverTheLimit) {
  EXPECT_FALSE(EncodeTtrpc(1, MessageType::kResponse, 0, std::string(kTtrpcMaxData + 1, 'a')).ok());
  EXPECT_TRUE(EncodeTtrpc(1, MessageType::kResponse, 0, std::string(kTtrpcMaxData, 'a')).ok());
}

TEST(Decoders, SurviveGarbage) {
  std::mt19937 rng(16);
  for (int i = 0; i < 2000; ++i) {
    std::string junk(rng() % 64, '\0');
    for (char& c : junk) c = static_cast<char>(rng());
    MuxDecoder mux;
    TtrpcDecoder ttrpc;
    mux.Feed(junk);
    ttrpc.Feed(junk);
    for (int k = 0; k < 16; ++k) {
      auto f = mux.Next();
      if (!f.ok() || !*f) break;
    }
    for (int k = 0; k < 16; ++k) {
      auto m = ttrpc.Next();
      if (!m.ok() || !*m) break;
    }
  }
}

// The fuzz harness (fuzz/nri_frame_fuzz.cc) over its seed corpus and a few thousand mutations
// of it: what libFuzzer runs with clang, run here with every compiler.
TEST(NriFrameFuzzHarness, SurvivesTheCorpusAndRandomMutations) {
  spdlog::level::level_enum before = spdlog::get_level();
  spdlog::set_level(spdlog::level::off);
  const fs::path corpus = testing::SourceDir() / "testdata/nri/corpus";
  std::vector<std::string> seeds;
  for (const auto& entry : fs::directory_iterator(corpus)) {
    seeds.push_back(testing::ReadFile(entry.path()));
  }
  ASSERT_GE(seeds.size(), 5u) << corpus;
  std::mt19937 rng(2026);
  int runs = 0;
  for (const std::string& seed : seeds) {
    LLVMFuzzerTestOneInput(reinterpret_cast<const uint8_t*>(seed.data()), seed.size());
    ++runs;
  }
  for (int i = 0; i < 3000; ++i) {
    std::string input = seeds[rng() % seeds.size()];
    const int edits = 1 + rng() % 4;
    for (int e = 0; e < edits && !input.empty(); ++e) {
      switch (rng() % 4) {
        case 0:
          input[rng() % input.size()] = static_cast<char>(rng());
          break;
        case 1:
          input.resize(rng() % input.size());
          break;
        case 2:
          input += seeds[rng() % seeds.size()].substr(1);
          break;
        default:
          input.insert(rng() % input.size(), std::string(1 + rng() % 8, '\xff'));
      }
    }
    LLVMFuzzerTestOneInput(reinterpret_cast<const uint8_t*>(input.data()), input.size());
    ++runs;
  }
  spdlog::set_level(before);
  EXPECT_EQ(runs, static_cast<int>(seeds.size()) + 3000);
}

}  // namespace
}  // namespace edgefd::nri
