#include "edgefd/runtime/work_team.h"

#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>

#include "edgefd/runtime/devices.h"
#include "edgefd/runtime/tensor.h"

namespace edgefd::runtime {
namespace {

void FutexWait(std::atomic<uint32_t>& word, uint32_t expected) {
  syscall(SYS_futex, reinterpret_cast<uint32_t*>(&word), FUTEX_WAIT_PRIVATE, expected, nullptr,
          nullptr, 0);
}

void FutexWakeAll(std::atomic<uint32_t>& word) {
  syscall(SYS_futex, reinterpret_cast<uint32_t*>(&word), FUTEX_WAKE_PRIVATE, INT32_MAX, nullptr,
          nullptr, 0);
}

inline void CpuRelax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__) || defined(__arm__)
  asm volatile("yield");
#endif
}

// Polls `done()` for up to WorkTeam::kSpinNs; true when it came true meanwhile.
template <typename Done>
bool SpinFor(Done done) {
  const int64_t until = NowNs() + WorkTeam::kSpinNs;
  for (int i = 1;; ++i) {
    if (done()) return true;
    CpuRelax();
    if (i % 64 == 0 && NowNs() > until) return done();
  }
}

constexpr uint64_t Job(uint32_t generation, int chunks, int next) {
  return uint64_t(generation) << 32 | uint64_t(chunks) << 16 | uint64_t(next);
}

}  // namespace

WorkTeam::WorkTeam(int threads, std::vector<int> cpus) {
  for (int id = 1; id < std::max(1, threads); ++id) {
    workers_.emplace_back([this, id, cpus] { WorkerLoop(id, cpus); });
  }
}

WorkTeam::~WorkTeam() {
  stop_.store(true);
  generation_.fetch_add(1);
  FutexWakeAll(generation_);
  for (std::thread& t : workers_) t.join();
}

void WorkTeam::Run(int rows, const std::function<void(int, int, int)>& body) {
  // A few chunks per thread: small enough that the last one claimed ends soon after the others,
  // large enough that claiming costs nothing next to the rows.
  const int chunks = std::clamp(threads() * 8, 1, std::min(rows, 0xffff));
  if (workers_.empty() || chunks < 2) {
    body(0, rows, 0);
    return;
  }
  body_ = &body;
  rows_ = rows;
  chunks_ = chunks;
  done_.store(0, std::memory_order_relaxed);
  const uint32_t generation = generation_.load(std::memory_order_relaxed) + 1;
  job_.store(Job(generation, chunks, 0), std::memory_order_release);
  generation_.store(generation);
  if (sleepers_.load() > 0) FutexWakeAll(generation_);
  Work(generation, 0);
  auto all_done = [&] { return done_.load(std::memory_order_acquire) == uint32_t(chunks); };
  if (!SpinFor(all_done)) {
    // A worker holds a chunk but not a core: sleep until it has finished.
    caller_sleeps_.store(true);
    for (uint32_t d = done_.load(); d != uint32_t(chunks); d = done_.load()) FutexWait(done_, d);
    caller_sleeps_.store(false);
  }
  body_ = nullptr;
}

void WorkTeam::Work(uint32_t generation, int id) {
  uint64_t job = job_.load(std::memory_order_acquire);
  for (;;) {
    const int next = int(job & 0xffff), chunks = int(job >> 16 & 0xffff);
    if (uint32_t(job >> 32) != generation || next >= chunks) return;
    if (!job_.compare_exchange_weak(job, job + 1, std::memory_order_acq_rel)) continue;
    // The claim holds the job (and body_, rows_) alive until done_ counts it.
    const int begin = int(int64_t(rows_) * next / chunks);
    const int end = int(int64_t(rows_) * (next + 1) / chunks);
    (*body_)(begin, end, id);
    if (done_.fetch_add(1) + 1 == uint32_t(chunks) && id != 0 && caller_sleeps_.load()) {
      FutexWakeAll(done_);
    }
    job = job_.load(std::memory_order_acquire);
  }
}

void WorkTeam::WorkerLoop(int id, const std::vector<int>& cpus) {
  // The whole set, not one core each: on shared cores a thread must be free to move.
  if (!cpus.empty()) (void)PinThisThread(cpus);
  uint32_t seen = 0;
  for (;;) {
    auto changed = [&] { return generation_.load(std::memory_order_acquire) != seen; };
    if (!SpinFor(changed)) {
      sleepers_.fetch_add(1);
      // seq_cst against Run's store of generation_ and load of sleepers_: either it sees us
      // asleep and wakes us, or we see its new generation.
      while (generation_.load() == seen) FutexWait(generation_, seen);
      sleepers_.fetch_sub(1);
    }
    // The generation first, then stop_: ~WorkTeam sets stop_ before it bumps the generation,
    // so a worker that took the destructor's generation as its own also sees stop_ and never
    // waits for a generation that will not come.
    seen = generation_.load();
    if (stop_.load()) return;
    Work(seen, id);
  }
}

}  // namespace edgefd::runtime
