// Triple-buffer links: in-process and over /dev/shm rings (layout and trust model: shm_ring.h),
// with futex wake-ups.
#include <fcntl.h>
#include <linux/futex.h>
#include <signal.h>
#include <spdlog/spdlog.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <mutex>
#include <optional>
#include <thread>

#include "edgefd/common/unique_fd.h"
#include "edgefd/runtime/shm_ring.h"
#include "edgefd/runtime/transport.h"

namespace edgefd::runtime {

Status FrameWriter::PublishFrom(const FrameMeta& meta, const float* data) {
  std::memcpy(Buffer(), data, meta.shape.Bytes());
  return Publish(meta);
}

std::string CheckFrameMeta(const FrameMeta& meta, size_t max_bytes) {
  const Shape& s = meta.shape;
  if (s.h < 1 || s.w < 1 || s.c < 1) return "shape " + s.ToString() + " has a dimension below 1";
  // Divisions, not a product: no overflow whatever the dimensions.
  const size_t max_floats = max_bytes / sizeof(float);
  const size_t h = size_t(s.h), w = size_t(s.w), c = size_t(s.c);
  if (h > max_floats || w > max_floats / h || c > max_floats / (h * w)) {
    return "shape " + s.ToString() + " does not fit the link's " + std::to_string(max_bytes) +
           "-byte frames";
  }
  if (meta.stamp_count > uint32_t(kMaxStages)) {
    return std::to_string(meta.stamp_count) + " stage stamps, at most " +
           std::to_string(kMaxStages);
  }
  // Monotonic nanoseconds since boot: never negative, and far below 2^62 (146 years); the
  // sink subtracts them, which must not overflow.
  constexpr int64_t kMaxTimeNs = int64_t(1) << 62;
  auto bad = [](int64_t t) { return t < 0 || t > kMaxTimeNs; };
  if (bad(meta.t_source_ns)) return "source time " + std::to_string(meta.t_source_ns) + " ns";
  for (uint32_t i = 0; i < 2 * meta.stamp_count; ++i) {
    if (bad(meta.stamps[i])) return "stamp " + std::to_string(meta.stamps[i]) + " ns";
  }
  return {};
}

namespace {

constexpr size_t kPage = 4096;
constexpr char kShmDir[] = "/dev/shm/";

size_t RoundUp(size_t n, size_t to) { return (n + to - 1) / to * to; }

void FutexWait(std::atomic<uint32_t>* word, uint32_t expected, std::chrono::nanoseconds timeout) {
  if (timeout.count() <= 0) return;
  timespec ts{time_t(timeout.count() / 1000000000), long(timeout.count() % 1000000000)};
  // Not FUTEX_PRIVATE: the word may be shared between processes.
  syscall(SYS_futex, reinterpret_cast<uint32_t*>(word), FUTEX_WAIT, expected, &ts, nullptr, 0);
}

void FutexWakeAll(std::atomic<uint32_t>* word) {
  syscall(SYS_futex, reinterpret_cast<uint32_t*>(word), FUTEX_WAKE, INT32_MAX, nullptr, nullptr, 0);
}

// --- SIGBUS guard ----------------------------------------------------------------------------
// Another process of the same user can truncate a ring's file under our mapping; the next access
// to a page past the new end raises SIGBUS. The handler puts zero-filled private pages where the
// ring was (so the faulting access completes) and marks the ring, which the ends check on every
// frame and report as broken, naming it. Faults outside every ring go to the previous handler.

struct GuardedRange {
  std::atomic<uintptr_t> begin{0};
  std::atomic<uintptr_t> end{0};
  std::atomic<bool> hit{false};
};
constexpr int kMaxGuarded = 64;
GuardedRange g_guarded[kMaxGuarded];
struct sigaction g_previous_sigbus;

void OnSigbus(int sig, siginfo_t* info, void* context) {
  const auto addr = reinterpret_cast<uintptr_t>(info->si_addr);
  for (GuardedRange& r : g_guarded) {
    const uintptr_t b = r.begin.load(std::memory_order_acquire);
    const uintptr_t e = r.end.load(std::memory_order_acquire);
    if (b == 0 || addr < b || addr >= e) continue;
    void* p = mmap(reinterpret_cast<void*>(b), e - b, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
    if (p != MAP_FAILED) {
      r.hit.store(true, std::memory_order_release);
      return;
    }
  }
  if ((g_previous_sigbus.sa_flags & SA_SIGINFO) != 0 && g_previous_sigbus.sa_sigaction != nullptr) {
    g_previous_sigbus.sa_sigaction(sig, info, context);
  } else if (g_previous_sigbus.sa_handler != SIG_DFL && g_previous_sigbus.sa_handler != SIG_IGN) {
    g_previous_sigbus.sa_handler(sig);
  } else {
    // The access runs again on return and now ends the process as it would have without us.
    signal(SIGBUS, SIG_DFL);
  }
}

/// Guards [base, base + bytes) until destroyed; Hit() once the mapping was lost.
class SigbusGuard {
 public:
  SigbusGuard(void* base, size_t bytes) {
    static std::once_flag once;
    std::call_once(once, [] {
      struct sigaction sa {};
      sa.sa_sigaction = &OnSigbus;
      sa.sa_flags = SA_SIGINFO;
      sigemptyset(&sa.sa_mask);
      sigaction(SIGBUS, &sa, &g_previous_sigbus);
    });
    for (GuardedRange& r : g_guarded) {
      uintptr_t expected = 0;
      if (r.begin.compare_exchange_strong(expected, 1)) {  // 1: claimed, matches no address
        range_ = &r;
        r.hit.store(false);
        r.end.store(reinterpret_cast<uintptr_t>(base) + bytes, std::memory_order_release);
        r.begin.store(reinterpret_cast<uintptr_t>(base), std::memory_order_release);
        return;
      }
    }
    spdlog::warn("more than {} shm rings in one process: a truncated ring will crash it",
                 kMaxGuarded);
  }
  ~SigbusGuard() {
    if (range_ == nullptr) return;
    range_->end.store(0, std::memory_order_release);
    range_->begin.store(0, std::memory_order_release);
  }
  SigbusGuard(const SigbusGuard&) = delete;
  SigbusGuard& operator=(const SigbusGuard&) = delete;
  bool Hit() const { return range_ != nullptr && range_->hit.load(std::memory_order_relaxed); }

 private:
  GuardedRange* range_ = nullptr;
};

// --- regions -----------------------------------------------------------------------------

/// A mapped ring: a RingHeader and three slots, addressed with this end's own geometry.
class Region {
 public:
  Region(RingGeometry geometry, std::string name) : geometry_(geometry), name_(std::move(name)) {}
  virtual ~Region() = default;
  Region(const Region&) = delete;
  Region& operator=(const Region&) = delete;

  RingHeader* header() const { return static_cast<RingHeader*>(base_); }
  const RingGeometry& geometry() const { return geometry_; }
  /// Slot `i`; callers pass only indices they checked to be below 3.
  float* Slot(uint32_t i) const {
    return reinterpret_cast<float*>(static_cast<char*>(base_) + geometry_.header_bytes +
                                    size_t(i) * geometry_.slot_bytes);
  }
  /// "shm:NAME" or "inproc": how errors name the link.
  const std::string& name() const { return name_; }
  /// Whether a consumer still holds the ring (in-process: always).
  virtual bool ConsumerAlive() const { return true; }
  /// Whether the mapping was lost (the file truncated under it).
  virtual bool Lost() const { return false; }

  /// In-process zero-copy frames: pointers stay in this process's memory, never in the header.
  const float* external[3] = {nullptr, nullptr, nullptr};

 protected:
  void* base_ = nullptr;
  RingGeometry geometry_;
  std::string name_;
};

void InitHeader(RingHeader* h, const RingGeometry& g) {
  h->header_bytes = uint32_t(g.header_bytes);
  h->slot_bytes = g.slot_bytes;
  h->middle.store(1);
  h->published.store(0);
  h->taken.store(0);
  h->closed.store(0);
  h->back.store(0);
  h->front.store(2);
  h->drops.store(0);
  for (uint64_t& r : h->reserved) r = 0;
  std::atomic_thread_fence(std::memory_order_release);
  reinterpret_cast<std::atomic<uint32_t>*>(&h->magic)->store(kRingMagic, std::memory_order_release);
}

class HeapRegion final : public Region {
 public:
  explicit HeapRegion(const RingGeometry& g) : Region(g, "inproc") {
    base_ = std::aligned_alloc(kPage, g.total_bytes);
    if (base_ == nullptr) throw std::bad_alloc();
    std::memset(base_, 0, g.total_bytes);  // pre-fault every slot page
    InitHeader(header(), g);
  }
  ~HeapRegion() override { std::free(base_); }
};

// Open-file-description locks: held by an open file, released by the kernel when the holder's
// last descriptor closes, whatever way its process ends.
bool LockByte(int fd, long byte) {
  struct flock fl {};
  fl.l_type = F_WRLCK;
  fl.l_whence = SEEK_SET;
  fl.l_start = byte;
  fl.l_len = 1;
  return fcntl(fd, F_OFD_SETLK, &fl) == 0;
}

bool ByteLocked(int fd, long byte) {
  struct flock fl {};
  fl.l_type = F_RDLCK;  // conflicts with the holder's write lock; needs no write access
  fl.l_whence = SEEK_SET;
  fl.l_start = byte;
  fl.l_len = 1;
  if (fcntl(fd, F_OFD_GETLK, &fl) != 0) return true;  // cannot tell: assume it is held
  return fl.l_type != F_UNLCK;
}

std::optional<Error> CheckRingName(const std::string& name) {
  bool plain = !name.empty() && name.size() <= 200 && name != "." && name != "..";
  for (char c : name) {
    plain =
        plain && (std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-');
  }
  if (plain) return std::nullopt;
  return Error{"shm:" + name +
               ": a ring name is a plain file name under /dev/shm (letters, digits, '.', '_', "
               "'-'; at most 200)"};
}

class ShmRing final : public Region {
 public:
  /// What a producer gets: the ring and the slot it may write (neither the consumer's nor the
  /// one holding the newest frame).
  struct Attached {
    std::shared_ptr<ShmRing> ring;
    uint32_t back;
  };

  /// The consumer's end: creates /dev/shm/<name> exclusively, replacing a ring no live consumer
  /// holds (left by a run that died), and holds the consumer lock until destroyed.
  static Result<std::shared_ptr<ShmRing>> Create(const std::string& name, const RingGeometry& g) {
    if (auto bad = CheckRingName(name)) return *bad;
    auto ring = std::shared_ptr<ShmRing>(new ShmRing(name, g));
    const std::string& where = ring->name();
    const std::string path = "/" + name;
    for (int attempt = 0;; ++attempt) {
      ring->fd_.Reset(shm_open(path.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
      if (ring->fd_.valid()) break;
      if (errno != EEXIST || attempt == 3) {
        return Error{where + ": cannot create " + kShmDir + name + ": " + std::strerror(errno)};
      }
      UniqueFd old(shm_open(path.c_str(), O_RDONLY | O_CLOEXEC, 0));
      if (!old.valid()) {
        if (errno == ENOENT) continue;  // its consumer just removed it
        return Error{where + ": " + kShmDir + name + " exists and cannot be opened (" +
                     std::strerror(errno) + "); remove it or choose another name"};
      }
      struct stat st {};
      if (fstat(old.get(), &st) != 0 || st.st_uid != geteuid()) {
        return Error{where + ": " + kShmDir + name + " belongs to uid " +
                     std::to_string(st.st_uid) + ", not to this stage's uid " +
                     std::to_string(geteuid()) + "; refusing to use or remove it"};
      }
      if (ByteLocked(old.get(), kRingConsumerLockByte)) {
        return Error{where + ": another consumer is already listening on this ring"};
      }
      spdlog::warn("{}: replacing a ring left by a run that ended without removing it", where);
      if (shm_unlink(path.c_str()) != 0 && errno != ENOENT) {
        return Error{where + ": cannot remove the stale ring: " + std::strerror(errno)};
      }
    }
    ring->owner_ = true;  // from here on, failures remove the file again
    if (!LockByte(ring->fd_.get(), kRingConsumerLockByte)) {
      return Error{where + ": another consumer is already listening on this ring"};
    }
    // Reserve the memory now: a full /dev/shm is an error here rather than SIGBUS on first touch.
    if (int rc = posix_fallocate(ring->fd_.get(), 0, off_t(g.total_bytes)); rc != 0) {
      return Error{where + ": cannot reserve " + std::to_string(g.total_bytes) + " bytes in " +
                   kShmDir + ": " + std::strerror(rc) + " (is /dev/shm too small?)"};
    }
    if (Status s = ring->Map(); !s) return s.error();
    InitHeader(ring->header(), g);
    return ring;
  }

  /// The producer's end: waits up to `wait` for a live consumer's ring of this geometry, then
  /// holds the producer lock. Errors that waiting cannot cure come at once.
  static Result<Attached> Attach(const std::string& name, const RingGeometry& g,
                                 std::chrono::milliseconds wait, const std::atomic<bool>* abort) {
    if (auto bad = CheckRingName(name)) return *bad;
    const auto deadline = std::chrono::steady_clock::now() + wait;
    std::string problem;
    for (;;) {
      auto attached = TryAttach(name, g, &problem);
      if (!attached) return attached.error();
      if (*attached) return std::move(**attached);
      if (std::chrono::steady_clock::now() >= deadline || (abort != nullptr && abort->load())) {
        return Error{"shm:" + name + ": no live consumer within " + std::to_string(wait.count()) +
                     " ms (" + problem + ")"};
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
  }

  ~ShmRing() override {
    guard_.reset();
    if (base_ != nullptr) munmap(base_, geometry_.total_bytes);
    // Remove the name only while it is still this ring: a later consumer may have replaced it.
    struct stat mine {
    }, named{};
    if (owner_ && fstat(fd_.get(), &mine) == 0 &&
        stat((kShmDir + shm_name_).c_str(), &named) == 0 && mine.st_dev == named.st_dev &&
        mine.st_ino == named.st_ino) {
      shm_unlink(("/" + shm_name_).c_str());
    }
  }  // fd_ closes last, releasing this end's lock

  bool ConsumerAlive() const override { return ByteLocked(fd_.get(), kRingConsumerLockByte); }
  bool Lost() const override { return guard_ && guard_->Hit(); }

 private:
  ShmRing(const std::string& name, const RingGeometry& g)
      : Region(g, "shm:" + name), shm_name_(name) {}

  Status Map() {
    void* p = mmap(nullptr, geometry_.total_bytes, PROT_READ | PROT_WRITE,
                   MAP_SHARED | MAP_POPULATE, fd_.get(), 0);
    if (p == MAP_FAILED) return Error{name() + ": mmap: " + std::strerror(errno)};
    base_ = p;
    guard_ = std::make_unique<SigbusGuard>(base_, geometry_.total_bytes);
    return Ok{};
  }

  // One look at /dev/shm/<name>: an Error to give up now, nullopt to wait (`*problem` says why).
  static Result<std::optional<Attached>> TryAttach(const std::string& name, const RingGeometry& g,
                                                   std::string* problem) {
    const std::string where = "shm:" + name;
    UniqueFd fd(shm_open(("/" + name).c_str(), O_RDWR | O_CLOEXEC, 0));
    if (!fd.valid()) {
      if (errno != ENOENT) return Error{where + ": " + std::strerror(errno)};
      *problem = "no ring of that name yet";
      return std::optional<Attached>();
    }
    struct stat st {};
    if (fstat(fd.get(), &st) != 0 || !S_ISREG(st.st_mode)) {
      return Error{where + ": " + kShmDir + name + " is not a ring"};
    }
    if (st.st_uid != geteuid()) {
      return Error{where + ": " + kShmDir + name + " belongs to uid " + std::to_string(st.st_uid) +
                   ", not to this stage's uid " + std::to_string(geteuid())};
    }
    if (!ByteLocked(fd.get(), kRingConsumerLockByte)) {
      *problem = "the ring there was left by a run that ended; its consumer is gone";
      return std::optional<Attached>();
    }
    if (size_t(st.st_size) != g.total_bytes) {
      if (st.st_size == 0) {  // its consumer is still sizing it
        *problem = "the ring is being created";
        return std::optional<Attached>();
      }
      return Error{where + ": ring is " + std::to_string(st.st_size) +
                   " bytes, this stage expects " + std::to_string(g.total_bytes) +
                   " (stages disagree about the frame shape?)"};
    }
    uint32_t magic = 0;
    if (pread(fd.get(), &magic, sizeof magic, 0) != ssize_t(sizeof magic) || magic != kRingMagic) {
      *problem = "the ring's header is not initialised (magic " + std::to_string(magic) + ")";
      return std::optional<Attached>();
    }
    if (!LockByte(fd.get(), kRingProducerLockByte)) {
      *problem = "another producer is attached to it";
      return std::optional<Attached>();
    }
    auto ring = std::shared_ptr<ShmRing>(new ShmRing(name, g));
    ring->fd_ = std::move(fd);
    if (Status s = ring->Map(); !s) return s.error();
    // Read once, checked against our own geometry, never read again.
    RingHeader* h = ring->header();
    const uint32_t header_bytes = h->header_bytes;
    const uint64_t slot_bytes = h->slot_bytes;
    const uint32_t middle = h->middle.load();
    const uint32_t front = h->front.load();
    const uint32_t newest = middle & ~kRingFresh;
    if (header_bytes != g.header_bytes || slot_bytes != g.slot_bytes || newest > 2 || front > 2 ||
        newest == front || ring->Lost()) {
      return Error{where + ": corrupt ring header (header_bytes " + std::to_string(header_bytes) +
                   ", slot_bytes " + std::to_string(slot_bytes) + ", middle " +
                   std::to_string(middle) + ", front " + std::to_string(front) +
                   "): is another process writing " + kShmDir + name + "?"};
    }
    return std::optional<Attached>(Attached{std::move(ring), 3 - newest - front});
  }

  std::string shm_name_;
  UniqueFd fd_;
  bool owner_ = false;
  std::unique_ptr<SigbusGuard> guard_;
};

// --- the two ends ------------------------------------------------------------------------

std::string CorruptRing(const Region& region, const std::string& what) {
  std::string out = region.name() + ": corrupt ring: " + what;
  if (region.name().rfind("shm:", 0) == 0) {
    out += " (is another process writing " + std::string(kShmDir) + region.name().substr(4) + "?)";
  }
  return out;
}

/// Finds the producer a new ring when its consumer is gone (shm only).
using Reattach =
    std::function<Result<ShmRing::Attached>(std::chrono::milliseconds, const std::atomic<bool>*)>;

class MailboxWriter final : public FrameWriter {
 public:
  MailboxWriter(std::shared_ptr<Region> region, uint32_t back, Policy policy, bool zero_copy,
                Reattach reattach = {}, std::chrono::milliseconds reattach_wait = {})
      : region_(std::move(region)),
        back_(back),
        policy_(policy),
        zero_copy_(zero_copy),
        reattach_(std::move(reattach)),
        reattach_wait_(reattach_wait) {}

  float* Buffer() override { return region_->Slot(back_); }

  Status Publish(const FrameMeta& meta) override { return Put(meta, nullptr); }

  Status PublishFrom(const FrameMeta& meta, const float* data) override {
    if (!zero_copy_) return FrameWriter::PublishFrom(meta, data);
    return Put(meta, data);
  }

  Status Close() override {
    if (fault_) return *fault_;
    RingHeader* h = region_->header();
    h->closed.store(1);
    h->published.fetch_add(1);
    FutexWakeAll(&h->published);
    return Ok{};
  }

  uint64_t Drops() const override { return region_->header()->drops.load() + lost_; }
  uint64_t Reconnects() const override { return reconnects_; }

 private:
  Status Broken(const std::string& what) {
    fault_ = Error{CorruptRing(*region_, what)};
    return *fault_;
  }

  Status Put(const FrameMeta& meta, const float* external) {
    if (fault_) return *fault_;
    if (meta.shape.Bytes() > region_->geometry().frame_bytes) {
      return Error{region_->name() + ": frame " + meta.shape.ToString() +
                   " does not fit the link's slots"};
    }
    if (Status s = KeepConsumer(meta); !s) return s;
    RingHeader* h = region_->header();
    if (policy_ == Policy::kBlock) {
      // Wait until the consumer took the previous frame (it may still be reading it: that
      // one is its front slot, not ours).
      auto next_check = std::chrono::steady_clock::now() + kPeerCheck;
      while (h->middle.load() & kRingFresh) {
        if (aborted_.load()) return Error{"link aborted while waiting for the consumer"};
        if (region_->Lost()) return Broken("the ring's file was truncated");
        uint32_t t = h->taken.load();
        if (!(h->middle.load() & kRingFresh)) break;
        FutexWait(&h->taken, t, kPeerCheck);
        if (std::chrono::steady_clock::now() >= next_check) {
          next_check = std::chrono::steady_clock::now() + kPeerCheck;
          if (!region_->ConsumerAlive()) {
            if (Status s = Reconnect(meta); !s) return s;
            h = region_->header();
          }
        }
      }
    }
    h->meta[back_] = meta;
    region_->external[back_] = external;
    const uint32_t prev = h->middle.exchange(back_ | kRingFresh, std::memory_order_acq_rel);
    h->published.fetch_add(1, std::memory_order_release);
    FutexWakeAll(&h->published);
    const uint32_t slot = prev & ~kRingFresh;
    if (slot > 2 || slot == back_) {
      return Broken("the exchange word held " + std::to_string(prev) +
                    ", which names no slot the producer may take");
    }
    if (prev & kRingFresh) h->drops.fetch_add(1);
    back_ = slot;
    h->back.store(slot, std::memory_order_relaxed);
    return Ok{};
  }

  // A consumer that dies takes its lock with it; every kPeerCheck the producer looks, and when
  // it is gone waits for a new one (as a gRPC link reconnects).
  Status KeepConsumer(const FrameMeta& meta) {
    if (region_->Lost()) return Broken("the ring's file was truncated");
    if (!reattach_) return Ok{};
    const auto now = std::chrono::steady_clock::now();
    if (now < next_peer_check_) return Ok{};
    next_peer_check_ = now + kPeerCheck;
    return region_->ConsumerAlive() ? Status(Ok{}) : Reconnect(meta);
  }

  Status Reconnect(const FrameMeta& meta) {
    if (!reattach_) return Ok{};
    auto attached = reattach_(reattach_wait_, &aborted_);
    if (!attached) {
      ++lost_;
      return Error{region_->name() + ": the consumer is gone; frame " + std::to_string(meta.seq) +
                   " lost (" + attached.error().message + ")"};
    }
    // The frame may already be in our old slot: carry it over.
    std::shared_ptr<Region> old = std::move(region_);
    const float* pixels = old->Slot(back_);
    region_ = std::move(attached->ring);
    back_ = attached->back;
    std::memcpy(Buffer(), pixels, std::min(meta.shape.Bytes(), region_->geometry().frame_bytes));
    ++reconnects_;
    spdlog::info("{}: a new consumer took the ring; carrying on", region_->name());
    return Ok{};
  }

  static constexpr std::chrono::milliseconds kPeerCheck{50};

  std::shared_ptr<Region> region_;
  uint32_t back_;  // ours alone; never read back from the header
  Policy policy_;
  bool zero_copy_;
  Reattach reattach_;
  std::chrono::milliseconds reattach_wait_;
  std::chrono::steady_clock::time_point next_peer_check_{};
  uint64_t lost_ = 0;
  uint64_t reconnects_ = 0;
};

class MailboxReader final : public FrameReader {
 public:
  explicit MailboxReader(std::shared_ptr<Region> region) : region_(std::move(region)) {}

  ReadResult Next(FrameMeta* meta, const float** data, std::chrono::milliseconds timeout) override {
    if (fault_) return ReadResult::kBroken;
    RingHeader* h = region_->header();
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
      if (region_->Lost()) return Broken("the ring's file was truncated");
      if (h->middle.load(std::memory_order_acquire) & kRingFresh) {
        const uint32_t prev = h->middle.exchange(front_, std::memory_order_acq_rel);
        const uint32_t slot = prev & ~kRingFresh;
        if (!(prev & kRingFresh) || slot > 2 || slot == front_) {
          return Broken("the exchange word held " + std::to_string(prev) +
                        ", which names no slot the consumer may take");
        }
        front_ = slot;
        h->front.store(slot, std::memory_order_relaxed);
        h->taken.fetch_add(1);
        FutexWakeAll(&h->taken);
        // One copy, then only the copy: what is checked is what is used.
        FrameMeta m = h->meta[slot];
        std::atomic_signal_fence(std::memory_order_seq_cst);
        if (std::string why = CheckFrameMeta(m, region_->geometry().frame_bytes); !why.empty()) {
          return Broken("frame " + std::to_string(m.seq) + ": " + why);
        }
        *meta = m;
        *data = region_->external[slot] != nullptr ? region_->external[slot] : region_->Slot(slot);
        return ReadResult::kFrame;
      }
      uint32_t p = h->published.load(std::memory_order_acquire);
      if (h->middle.load(std::memory_order_acquire) & kRingFresh) continue;
      if (h->closed.load()) return ReadResult::kClosed;
      auto left = deadline - std::chrono::steady_clock::now();
      if (left <= std::chrono::nanoseconds(0)) return ReadResult::kTimeout;
      FutexWait(&h->published, p, left);
    }
  }

  uint64_t Drops() const override { return region_->header()->drops.load(); }
  std::string Address() const override { return region_->name(); }

 private:
  ReadResult Broken(const std::string& what) {
    fault_ = Error{CorruptRing(*region_, what)};
    return ReadResult::kBroken;
  }

  std::shared_ptr<Region> region_;
  uint32_t front_ = 2;  // ours alone (InitHeader's layout); never read back from the header
};

}  // namespace

RingGeometry RingGeometry::For(size_t frame_bytes) {
  RingGeometry g;
  g.frame_bytes = frame_bytes;
  g.header_bytes = RoundUp(sizeof(RingHeader), kPage);
  g.slot_bytes = RoundUp(std::max<size_t>(frame_bytes, 1), kPage);
  g.total_bytes = g.header_bytes + 3 * g.slot_bytes;
  return g;
}

MailboxPair MakeInprocLink(size_t frame_bytes, Policy policy) {
  auto region = std::make_shared<HeapRegion>(RingGeometry::For(frame_bytes));
  return {std::make_unique<MailboxWriter>(region, 0, policy, true),
          std::make_unique<MailboxReader>(region)};
}

Result<std::unique_ptr<FrameWriter>> OpenShmWriter(const std::string& name, size_t frame_bytes,
                                                   Policy policy, std::chrono::milliseconds wait) {
  const RingGeometry g = RingGeometry::For(frame_bytes);
  auto attached = ShmRing::Attach(name, g, wait, nullptr);
  if (!attached) return attached.error();
  Reattach reattach = [name, g](std::chrono::milliseconds w, const std::atomic<bool>* abort) {
    return ShmRing::Attach(name, g, w, abort);
  };
  return std::unique_ptr<FrameWriter>(std::make_unique<MailboxWriter>(
      std::move(attached->ring), attached->back, policy, false, std::move(reattach), wait));
}

Result<std::unique_ptr<FrameReader>> OpenShmReader(const std::string& name, size_t frame_bytes,
                                                   Policy) {
  auto ring = ShmRing::Create(name, RingGeometry::For(frame_bytes));
  if (!ring) return ring.error();
  return std::unique_ptr<FrameReader>(std::make_unique<MailboxReader>(std::move(*ring)));
}

void UnlinkShm(const std::string& name) { shm_unlink(("/" + name).c_str()); }

namespace {

std::optional<Error> TlsOnShm(const std::string& address, const LinkSecurity& tls) {
  if (!tls.Tls() && !tls.Token()) return std::nullopt;
  return Error{address +
               ": --token-file and --tls-cert/--tls-key/--tls-ca secure gRPC links; a shm ring "
               "is local to the node, and its file's permissions say who may use it"};
}

}  // namespace

Result<std::unique_ptr<FrameReader>> OpenReader(const std::string& address, Shape shape,
                                                Policy policy, const LinkSecurity& tls) {
  if (address.rfind("shm:", 0) == 0) {
    if (auto e = TlsOnShm(address, tls)) return *e;
    return OpenShmReader(address.substr(4), shape.Bytes(), policy);
  }
  return ListenGrpc(address, shape, policy, tls);
}

Result<std::unique_ptr<FrameWriter>> OpenWriter(const std::string& address, Shape shape,
                                                Policy policy,
                                                std::chrono::milliseconds reconnect_timeout,
                                                const LinkSecurity& tls) {
  if (address.rfind("shm:", 0) == 0) {
    if (auto e = TlsOnShm(address, tls)) return *e;
    return OpenShmWriter(address.substr(4), shape.Bytes(), policy, reconnect_timeout);
  }
  return ConnectGrpc(address, shape.Bytes(), reconnect_timeout, tls);
}

}  // namespace edgefd::runtime
