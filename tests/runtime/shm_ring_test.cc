// The /dev/shm ring against a hostile co-tenant (a process or thread of the same user that maps
// the ring and writes its header), stale rings left by dead runs, and dead peers.
#include "edgefd/runtime/shm_ring.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <linux/futex.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstring>
#include <functional>
#include <future>
#include <iterator>
#include <memory>
#include <ostream>
#include <string>
#include <thread>
#include <vector>

#include "edgefd/runtime/transport.h"
#include "edgefd/testing/files.h"
#include "edgefd/testing/paths.h"
#include "edgefd/testing/process.h"

namespace edgefd::runtime {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;
using testing::Child;

using testing::UniqueName;  // a ring name no other test, run or clone uses

bool RingFileExists(const std::string& name) {
  struct stat st {};
  return stat(("/dev/shm/" + name).c_str(), &st) == 0;
}

// Polls `done` until it holds or `limit` passes (a condition wait with a deadline).
bool WaitUntil(const std::function<bool()>& done, milliseconds limit) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (!done()) {
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::yield();
  }
  return true;
}

// The co-tenant: maps /dev/shm/<name> read-write, as any process of the same user can, and
// plays producer by writing the header directly.
class Trespasser {
 public:
  explicit Trespasser(const std::string& name) {
    int fd = shm_open(("/" + name).c_str(), O_RDWR | O_CLOEXEC, 0);
    if (fd < 0) return;
    struct stat st {};
    fstat(fd, &st);
    bytes_ = size_t(st.st_size);
    if (bytes_ >= sizeof(RingHeader)) {
      void* p = mmap(nullptr, bytes_, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
      if (p != MAP_FAILED) base_ = p;
    }
    close(fd);
  }
  ~Trespasser() {
    if (base_ != nullptr) munmap(base_, bytes_);
  }
  bool mapped() const { return base_ != nullptr; }
  RingHeader* header() { return static_cast<RingHeader*>(base_); }
  /// A consumer has initialised the header.
  bool Initialised() {
    return mapped() && reinterpret_cast<std::atomic<uint32_t>*>(&header()->magic)->load() != 0;
  }
  /// Wakes the consumer as a producer does after publishing.
  void Wake() {
    header()->published.fetch_add(1);
    syscall(SYS_futex, reinterpret_cast<uint32_t*>(&header()->published), FUTEX_WAKE, INT32_MAX,
            nullptr, nullptr, 0);
  }

 private:
  void* base_ = nullptr;
  size_t bytes_ = 0;
};

// A valid frame of `shape` as the sink expects it, before a corruption is applied.
FrameMeta GoodMeta(Shape shape) {
  FrameMeta m;
  m.seq = 1;
  m.shape = shape;
  m.t_source_ns = NowNs();
  return m;
}

// `edgefd-pipeline sink` for conv 64x48 on ring `name`, with `extra` flags.
std::unique_ptr<Child> SinkOn(const std::string& name, std::vector<std::string> extra = {}) {
  std::vector<std::string> args = {testing::PipelineBin(),
                                   "sink",
                                   "--model",
                                   "conv",
                                   "--width",
                                   "64",
                                   "--height",
                                   "48",
                                   "--listen",
                                   "shm:" + name};
  args.insert(args.end(), extra.begin(), extra.end());
  return std::make_unique<Child>(args);
}

// The co-tenant's view of ring `name` once its consumer `owner` has initialised it; null when
// that did not happen within 20 s.
std::unique_ptr<Trespasser> AwaitRing(const std::string& name, const Child& owner) {
  std::unique_ptr<Trespasser> t;
  bool ready = WaitUntil(
      [&] {
        if (!RingFileExists(name)) return false;
        t = std::make_unique<Trespasser>(name);
        return t->Initialised();
      },
      seconds(20));
  if (!ready) ADD_FAILURE() << "ring " << name << " never appeared:\n" << owner.err();
  return ready ? std::move(t) : nullptr;
}

struct Corruption {
  const char* name;
  std::function<void(RingHeader*)> apply;  // applied to the header before Publish()
};

void PrintTo(const Corruption& c, std::ostream* os) { *os << c.name; }

const Shape kSinkShape{23, 31, 1};  // conv 64x48's output

const Corruption kCorruptions[] = {
    {"HugeShape",
     [](RingHeader* h) {
       h->meta[0].shape = {1 << 30, 1 << 30, 64};
     }},
    {"ShapeOneRowTooMany",
     [](RingHeader* h) {
       h->meta[0].shape = {4096 / (31 * 4) + 1, 31, 1};
     }},
    {"ShapeBeyondTheMapping",
     [](RingHeader* h) {
       h->meta[0].shape = {4096, 4096, 1};
     }},
    {"NegativeShape",
     [](RingHeader* h) {
       h->meta[0].shape = {-23, 31, 1};
     }},
    {"ZeroShape",
     [](RingHeader* h) {
       h->meta[0].shape = {0, 31, 1};
     }},
    {"StageCountAll", [](RingHeader* h) { h->meta[0].stage_count = 0xFFFFFFFFu; }},
    {"StageCountOneTooMany",
     [](RingHeader* h) { h->meta[0].stage_count = uint32_t(kMaxStages) + 1; }},
    {"SourceTimeMinimum", [](RingHeader* h) { h->meta[0].t_source_ns = INT64_MIN; }},
    {"SourceSendNegative", [](RingHeader* h) { h->meta[0].source_send_ns = -1; }},
    {"ComputeMaximum",
     [](RingHeader* h) {
       h->meta[0].stage_count = 1;
       h->meta[0].stages[0].compute_ns = INT64_MAX;
     }},
    {"WaitNegative",
     [](RingHeader* h) {
       h->meta[0].stage_count = 1;
       h->meta[0].stages[0].wait_ns = -3599998000000;
     }},
    {"SendBeyondADay",
     [](RingHeader* h) {
       h->meta[0].stage_count = 1;
       h->meta[0].stages[0].send_ns = kMaxDurationNs + 1;
     }},
    {"MiddleSlotThree", [](RingHeader* h) { h->middle.store(3 | kRingFresh); }},
    {"MiddleAllBits", [](RingHeader* h) { h->middle.store(0xFFFFFFFFu); }},
    {"MiddleIsTheConsumersSlot", [](RingHeader* h) { h->middle.store(2 | kRingFresh); }},
};

class HostileProducer : public ::testing::TestWithParam<Corruption> {};

// The reproduction: the co-tenant publishes one corrupt frame into a sink's ring. The
// sink must neither crash nor carry on: it exits 2 naming the ring.
TEST_P(HostileProducer, MakesTheSinkExit2NamingTheRing) {
  const std::string name = UniqueName("hostile");
  auto sink = SinkOn(name, {"--timeout-ms", "3000"});
  std::unique_ptr<Trespasser> t = AwaitRing(name, *sink);
  ASSERT_NE(t, nullptr);
  // A frame in slot 0, handed over as the producer does, then corrupted.
  RingHeader* h = t->header();
  h->meta[0] = GoodMeta(kSinkShape);
  h->middle.store(0 | kRingFresh);
  const Corruption& c = GetParam();
  c.apply(h);
  t->Wake();
  const int status = sink->Wait();
  EXPECT_EQ(status, 2) << c.name << ":\n" << sink->err();
  EXPECT_NE(sink->err().find("shm:" + name), std::string::npos) << sink->err();
  shm_unlink(("/" + name).c_str());
}

INSTANTIATE_TEST_SUITE_P(EveryField, HostileProducer, ::testing::ValuesIn(kCorruptions),
                         [](const ::testing::TestParamInfo<Corruption>& info) {
                           return std::string(info.param.name);
                         });

// Version 1 of the ring kept a pointer in the header (for in-process links) and followed it.
// Whatever is written there now, a good frame is read from the slot.
TEST(HostileProducer, ThePointerFieldIsNeverFollowed) {
  const std::string name = UniqueName("pointer");
  auto sink = SinkOn(name, {"--timeout-ms", "3000", "--json"});
  std::unique_ptr<Trespasser> t = AwaitRing(name, *sink);
  ASSERT_NE(t, nullptr);
  RingHeader* h = t->header();
  for (uint64_t& r : h->reserved) r = 0x1000;  // an address nobody maps
  h->meta[0] = GoodMeta(kSinkShape);
  h->middle.store(0 | kRingFresh);
  h->closed.store(1);
  t->Wake();
  EXPECT_EQ(sink->Wait(), 0) << sink->err();
  EXPECT_NE(sink->out().find("\"frames\":1"), std::string::npos) << sink->out();
  shm_unlink(("/" + name).c_str());
}

// A stage is a consumer and a producer: a corrupt input ring stops it with exit 2, naming the
// ring, and its downstream hears end-of-stream.
TEST(HostileProducer, MakesAStageExit2NamingTheRing) {
  const std::string in = UniqueName("stage-in"), out = UniqueName("stage-out");
  auto downstream = OpenShmReader(out, kSinkShape.Bytes(), Policy::kLatest);
  ASSERT_TRUE(downstream.ok()) << downstream.error().message;
  Child stage({testing::PipelineBin(), "stage", "--model", "conv", "--width", "64", "--height",
               "48", "--listen", "shm:" + in, "--next", "shm:" + out});
  std::unique_ptr<Trespasser> t = AwaitRing(in, stage);
  ASSERT_NE(t, nullptr);
  RingHeader* h = t->header();
  h->meta[0] = GoodMeta({48, 64, 1});
  h->meta[0].stage_count = 1000;
  h->middle.store(0 | kRingFresh);
  t->Wake();
  EXPECT_EQ(stage.Wait(), 2) << stage.err();
  EXPECT_NE(stage.err().find("shm:" + in + ": corrupt ring"), std::string::npos) << stage.err();
  FrameMeta meta;
  const float* data = nullptr;
  EXPECT_EQ((*downstream)->Next(&meta, &data, seconds(5)), ReadResult::kClosed);
  shm_unlink(("/" + in).c_str());
}

// The co-tenant truncates the ring's file under the sink's mapping: the next access would
// raise SIGBUS. The sink reports the ring instead of dying.
TEST(HostileProducer, TruncatingTheRingMakesTheSinkExit2NamingIt) {
  const std::string name = UniqueName("truncate");
  auto sink = SinkOn(name, {"--timeout-ms", "3000"});
  ASSERT_NE(AwaitRing(name, *sink), nullptr);
  int fd = shm_open(("/" + name).c_str(), O_RDWR | O_CLOEXEC, 0);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(ftruncate(fd, 0), 0);
  close(fd);
  EXPECT_EQ(sink->Wait(), 2) << sink->err();
  EXPECT_NE(sink->err().find("shm:" + name + ": corrupt ring: the ring's file was truncated"),
            std::string::npos)
      << sink->err();
  shm_unlink(("/" + name).c_str());
}

// Both ends in this process, the co-tenant truncates the file: each end reports the ring.
TEST(ShmRing, BothEndsSurviveTheirRingBeingTruncated) {
  const std::string name = UniqueName("truncate-both");
  const Shape shape{64, 64, 1};
  auto reader = OpenShmReader(name, shape.Bytes(), Policy::kLatest);
  ASSERT_TRUE(reader.ok()) << reader.error().message;
  auto writer = OpenShmWriter(name, shape.Bytes(), Policy::kLatest);
  ASSERT_TRUE(writer.ok()) << writer.error().message;
  int fd = shm_open(("/" + name).c_str(), O_RDWR | O_CLOEXEC, 0);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(ftruncate(fd, 0), 0);
  close(fd);
  std::vector<float> pixels(shape.Elements(), 1.0f);
  Status s = (*writer)->PublishFrom(GoodMeta(shape), pixels.data());  // faults in the copy
  ASSERT_FALSE(s.ok());
  ASSERT_TRUE((*writer)->Fault().has_value());
  EXPECT_NE(s.error().message.find("shm:" + name), std::string::npos) << s.error().message;
  FrameMeta meta;
  const float* data = nullptr;
  ASSERT_EQ((*reader)->Next(&meta, &data, milliseconds(200)), ReadResult::kBroken);
  EXPECT_NE((*reader)->Fault()->message.find("shm:" + name), std::string::npos);
}

// Every field of the header, written over and over with hostile values by a thread of its own
// (its own mapping, as another process would have) while frames flow: the ends never crash,
// never read outside their slots, and never hand out a frame that breaks the link's limits.
struct Field {
  std::string name;
  size_t offset;
  size_t size;  // 4 or 8
};

void PrintTo(const Field& f, std::ostream* os) { *os << f.name; }

std::vector<Field> EveryHeaderField() {
  std::vector<Field> out = {
      {"magic", offsetof(RingHeader, magic), 4},
      {"header_bytes", offsetof(RingHeader, header_bytes), 4},
      {"slot_bytes", offsetof(RingHeader, slot_bytes), 8},
      {"middle", offsetof(RingHeader, middle), 4},
      {"published", offsetof(RingHeader, published), 4},
      {"taken", offsetof(RingHeader, taken), 4},
      {"closed", offsetof(RingHeader, closed), 4},
      {"back", offsetof(RingHeader, back), 4},
      {"front", offsetof(RingHeader, front), 4},
      {"drops", offsetof(RingHeader, drops), 8},
  };
  for (int i = 0; i < 3; ++i) {
    const size_t m = offsetof(RingHeader, meta) + size_t(i) * sizeof(FrameMeta);
    const std::string p = "meta" + std::to_string(i) + "_";
    out.push_back({p + "seq", m + offsetof(FrameMeta, seq), 8});
    out.push_back({p + "t_source_ns", m + offsetof(FrameMeta, t_source_ns), 8});
    out.push_back({p + "h", m + offsetof(FrameMeta, shape) + offsetof(Shape, h), 4});
    out.push_back({p + "w", m + offsetof(FrameMeta, shape) + offsetof(Shape, w), 4});
    out.push_back({p + "c", m + offsetof(FrameMeta, shape) + offsetof(Shape, c), 4});
    out.push_back({p + "source_clock", m + offsetof(FrameMeta, source_clock), 8});
    out.push_back({p + "source_send_ns", m + offsetof(FrameMeta, source_send_ns), 8});
    out.push_back({p + "stage_count", m + offsetof(FrameMeta, stage_count), 4});
    out.push_back({p + "first_wait", m + offsetof(FrameMeta, stages), 8});
    out.push_back(
        {p + "last_send", m + offsetof(FrameMeta, stages) + sizeof(FrameMeta::stages) - 8, 8});
    out.push_back({"reserved" + std::to_string(i), offsetof(RingHeader, reserved) + 8 * i, 8});
  }
  return out;
}

class HostileThread : public ::testing::TestWithParam<Field> {};

TEST_P(HostileThread, NeverMakesAnEndCrashOrReadOutsideItsSlots) {
  const Field& field = GetParam();
  const std::string name = UniqueName("field");
  const Shape shape{16, 16, 1};
  auto reader = OpenShmReader(name, shape.Bytes(), Policy::kLatest);
  ASSERT_TRUE(reader.ok()) << reader.error().message;
  auto writer = OpenShmWriter(name, shape.Bytes(), Policy::kLatest);
  ASSERT_TRUE(writer.ok()) << writer.error().message;
  Trespasser t(name);
  ASSERT_TRUE(t.mapped());

  std::atomic<bool> stop{false};
  std::thread hostile([&] {
    const uint64_t values[] = {0,          1,      2,          3,          4,
                               5,          6,      7,          0x7fffffff, 0x80000000,
                               0xffffffff, 0x1000, 1ull << 62, 1ull << 63, ~0ull};
    char* field_addr = reinterpret_cast<char*>(t.header()) + field.offset;
    for (size_t i = 0; !stop.load(std::memory_order_relaxed); ++i) {
      const uint64_t v = values[i % std::size(values)];
      if (field.size == 4) {
        __atomic_store_n(reinterpret_cast<uint32_t*>(field_addr), uint32_t(v), __ATOMIC_RELAXED);
      } else {
        __atomic_store_n(reinterpret_cast<uint64_t*>(field_addr), v, __ATOMIC_RELAXED);
      }
    }
  });
  std::thread producer([&] {
    for (uint64_t seq = 1; seq <= 400 && !stop.load(); ++seq) {
      float* out = (*writer)->Buffer();
      for (size_t i = 0; i < shape.Elements(); ++i) out[i] = float(seq);
      FrameMeta meta = GoodMeta(shape);
      meta.seq = seq;
      if (!(*writer)->Publish(meta).ok() && (*writer)->Fault()) {
        EXPECT_NE((*writer)->Fault()->message.find("shm:" + name), std::string::npos);
        return;
      }
    }
    (void)(*writer)->Close();
  });
  const size_t max_floats = shape.Elements();
  const auto deadline = std::chrono::steady_clock::now() + seconds(2);
  double sum = 0;
  int frames = 0;
  while (std::chrono::steady_clock::now() < deadline) {
    FrameMeta meta;
    const float* data = nullptr;
    ReadResult r = (*reader)->Next(&meta, &data, milliseconds(20));
    if (r == ReadResult::kClosed) break;
    if (r == ReadResult::kBroken) {
      EXPECT_NE((*reader)->Fault()->message.find("shm:" + name), std::string::npos)
          << (*reader)->Fault()->message;
      break;
    }
    if (r != ReadResult::kFrame) continue;
    ++frames;
    ASSERT_GE(meta.shape.h, 1);
    ASSERT_GE(meta.shape.w, 1);
    ASSERT_GE(meta.shape.c, 1);
    ASSERT_LE(meta.shape.Elements(), max_floats) << meta.shape.ToString();
    ASSERT_LE(meta.stage_count, uint32_t(kMaxStages));
    for (uint32_t i = 0; i < meta.stage_count; ++i) {
      ASSERT_GE(meta.stages[i].wait_ns, 0);
      ASSERT_LE(meta.stages[i].send_ns, kMaxDurationNs);
    }
    for (size_t i = 0; i < meta.shape.Elements(); ++i) sum += data[i];  // every byte readable
  }
  stop.store(true);
  hostile.join();
  producer.join();
  RecordProperty("frames", frames);
  (void)sum;
}

INSTANTIATE_TEST_SUITE_P(EveryField, HostileThread, ::testing::ValuesIn(EveryHeaderField()),
                         [](const ::testing::TestParamInfo<Field>& info) {
                           return info.param.name;
                         });

// "The second run reports 0 frames": a run whose ends went away must not leave a ring that the
// next run with the same name attaches to.
TEST(ShmRing, ASecondRunWithTheSameNameGetsItsFrames) {
  const std::string name = UniqueName("rerun");
  const Shape shape{4, 4, 1};
  for (int run = 0; run < 2; ++run) {
    auto reader = OpenShmReader(name, shape.Bytes(), Policy::kBlock);
    ASSERT_TRUE(reader.ok()) << "run " << run << ": " << reader.error().message;
    auto writer = OpenShmWriter(name, shape.Bytes(), Policy::kBlock);
    ASSERT_TRUE(writer.ok()) << "run " << run << ": " << writer.error().message;
    FrameMeta got;
    const float* data = nullptr;
    // Nothing was sent in this run yet: not the end of the previous one.
    ASSERT_EQ((*reader)->Next(&got, &data, milliseconds(50)), ReadResult::kTimeout)
        << "run " << run;
    FrameMeta meta = GoodMeta(shape);
    ASSERT_TRUE((*writer)->Publish(meta).ok());
    ASSERT_EQ((*reader)->Next(&got, &data, seconds(5)), ReadResult::kFrame) << "run " << run;
    EXPECT_EQ(got.seq, 1u);
    ASSERT_TRUE((*writer)->Close().ok());
    EXPECT_EQ((*reader)->Next(&got, &data, seconds(5)), ReadResult::kClosed);
  }
  EXPECT_FALSE(RingFileExists(name)) << "the consumer left /dev/shm/" << name << " behind";
}

// A consumer killed with SIGKILL leaves its ring; the next consumer of that name resets it,
// whatever frame size the dead run used.
TEST(ShmRing, ARingLeftByAKilledConsumerIsReset) {
  const std::string name = UniqueName("stale");
  {
    auto sink = SinkOn(name);
    ASSERT_NE(AwaitRing(name, *sink), nullptr);
    // What the dead run leaves: a closed stream with an unread frame.
    Trespasser t(name);
    t.header()->meta[0] = GoodMeta(kSinkShape);
    t.header()->closed.store(1);
    sink->Signal(SIGKILL);
    sink->Wait();
  }
  ASSERT_TRUE(RingFileExists(name));
  const Shape shape{48, 64, 1};  // this run's frames are larger
  auto reader = OpenShmReader(name, shape.Bytes(), Policy::kBlock);
  ASSERT_TRUE(reader.ok()) << reader.error().message;
  auto writer = OpenShmWriter(name, shape.Bytes(), Policy::kBlock);
  ASSERT_TRUE(writer.ok()) << writer.error().message;
  FrameMeta got;
  const float* data = nullptr;
  ASSERT_EQ((*reader)->Next(&got, &data, milliseconds(50)), ReadResult::kTimeout);
  FrameMeta meta = GoodMeta(shape);
  meta.seq = 7;
  ASSERT_TRUE((*writer)->Publish(meta).ok());
  ASSERT_EQ((*reader)->Next(&got, &data, seconds(5)), ReadResult::kFrame);
  EXPECT_EQ(got.seq, 7u);
}

// Two consumers of one ring cannot both get its frames: the second is refused, by name.
TEST(ShmRing, ASecondConsumerIsRefused) {
  const std::string name = UniqueName("twice");
  auto first = OpenShmReader(name, 64, Policy::kLatest);
  ASSERT_TRUE(first.ok()) << first.error().message;
  auto second = OpenShmReader(name, 64, Policy::kLatest);
  ASSERT_FALSE(second.ok());
  EXPECT_NE(second.error().message.find("shm:" + name), std::string::npos)
      << second.error().message;
}

// A blocking producer whose consumer dies (SIGKILL: no goodbye) reports it instead of waiting
// for ever for the frame to be taken.
TEST(ShmRing, ABlockingProducerNoticesItsConsumerDied) {
  const std::string name = UniqueName("dead");
  auto sink = SinkOn(name);
  ASSERT_NE(AwaitRing(name, *sink), nullptr);
  // It waits half a second for another consumer to take the name, then gives up on the frame.
  auto writer = OpenShmWriter(name, kSinkShape.Bytes(), Policy::kBlock, milliseconds(500));
  ASSERT_TRUE(writer.ok()) << writer.error().message;
  sink->Signal(SIGSTOP);  // it takes nothing more...
  FrameMeta meta = GoodMeta(kSinkShape);
  ASSERT_TRUE((*writer)->Publish(meta).ok());
  auto blocked = std::async(std::launch::async, [&] {
    ++meta.seq;
    return (*writer)->Publish(meta);
  });
  sink->Signal(SIGKILL);  // ...and dies
  sink->Wait();
  if (blocked.wait_for(seconds(10)) != std::future_status::ready) {
    (*writer)->Abort();  // lets the test end on a build that would wait for ever
    blocked.wait();
    FAIL() << "Publish still waits for a consumer that died 10 s ago";
  }
  Status s = blocked.get();
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.error().message.find("shm:" + name + ": the consumer is gone"), std::string::npos)
      << s.error().message;
  shm_unlink(("/" + name).c_str());
}

}  // namespace
}  // namespace edgefd::runtime
