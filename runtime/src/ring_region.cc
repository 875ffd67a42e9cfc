// The memory behind triple-buffer links (ring_region.h): heap and /dev/shm rings, the SIGBUS
// guard that survives a ring's file being truncated, and the locks that tell a live consumer
// from a dead one.
#include "ring_region.h"

#include <fcntl.h>
#include <linux/futex.h>
#include <signal.h>
#include <spdlog/spdlog.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <thread>

namespace edgefd::runtime {
namespace {

constexpr size_t kPage = 4096;

size_t RoundUp(size_t n, size_t to) { return (n + to - 1) / to * to; }

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

}  // namespace

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

namespace {

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

}  // namespace

void FutexWait(std::atomic<uint32_t>* word, uint32_t expected, std::chrono::nanoseconds timeout) {
  if (timeout.count() <= 0) return;
  timespec ts{time_t(timeout.count() / 1000000000), long(timeout.count() % 1000000000)};
  // Not FUTEX_PRIVATE: the word may be shared between processes.
  syscall(SYS_futex, reinterpret_cast<uint32_t*>(word), FUTEX_WAIT, expected, &ts, nullptr, 0);
}

void FutexWakeAll(std::atomic<uint32_t>* word) {
  syscall(SYS_futex, reinterpret_cast<uint32_t*>(word), FUTEX_WAKE, INT32_MAX, nullptr, nullptr, 0);
}

HeapRegion::HeapRegion(const RingGeometry& g) : Region(g, "inproc") {
  base_ = std::aligned_alloc(kPage, g.total_bytes);
  if (base_ == nullptr) throw std::bad_alloc();
  std::memset(base_, 0, g.total_bytes);  // pre-fault every slot page
  InitHeader(header(), g);
}

HeapRegion::~HeapRegion() { std::free(base_); }

ShmRing::ShmRing(const std::string& name, const RingGeometry& g)
    : Region(g, "shm:" + name), shm_name_(name) {}

Result<std::shared_ptr<ShmRing>> ShmRing::Create(const std::string& name, const RingGeometry& g) {
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
      return Error{where + ": " + kShmDir + name + " belongs to uid " + std::to_string(st.st_uid) +
                   ", not to this stage's uid " + std::to_string(geteuid()) +
                   "; refusing to use or remove it"};
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

Result<ShmRing::Attached> ShmRing::Attach(const std::string& name, const RingGeometry& g,
                                          std::chrono::milliseconds wait,
                                          const std::atomic<bool>* abort) {
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

ShmRing::~ShmRing() {
  guard_.reset();
  if (base_ != nullptr) munmap(base_, geometry_.total_bytes);
  // Remove the name only while it is still this ring: a later consumer may have replaced it.
  struct stat mine {
  }, named{};
  if (owner_ && fstat(fd_.get(), &mine) == 0 && stat((kShmDir + shm_name_).c_str(), &named) == 0 &&
      mine.st_dev == named.st_dev && mine.st_ino == named.st_ino) {
    shm_unlink(("/" + shm_name_).c_str());
  }
}  // fd_ closes last, releasing this end's lock

bool ShmRing::ConsumerAlive() const { return ByteLocked(fd_.get(), kRingConsumerLockByte); }

bool ShmRing::Lost() const { return guard_ && guard_->Hit(); }

Status ShmRing::Map() {
  void* p = mmap(nullptr, geometry_.total_bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE,
                 fd_.get(), 0);
  if (p == MAP_FAILED) return Error{name() + ": mmap: " + std::strerror(errno)};
  base_ = p;
  guard_ = std::make_unique<SigbusGuard>(base_, geometry_.total_bytes);
  return Ok{};
}

Result<std::optional<ShmRing::Attached>> ShmRing::TryAttach(const std::string& name,
                                                            const RingGeometry& g,
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
    return Error{where + ": ring is " + std::to_string(st.st_size) + " bytes, this stage expects " +
                 std::to_string(g.total_bytes) + " (stages disagree about the frame shape?)"};
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

RingGeometry RingGeometry::For(size_t frame_bytes) {
  RingGeometry g;
  g.frame_bytes = frame_bytes;
  g.header_bytes = RoundUp(sizeof(RingHeader), kPage);
  g.slot_bytes = RoundUp(std::max<size_t>(frame_bytes, 1), kPage);
  g.total_bytes = g.header_bytes + 3 * g.slot_bytes;
  return g;
}

void UnlinkShm(const std::string& name) { shm_unlink(("/" + name).c_str()); }

}  // namespace edgefd::runtime
