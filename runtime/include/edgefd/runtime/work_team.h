#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <thread>
#include <vector>

namespace edgefd::runtime {

/// The compute team of the runtime's own loops (the fused conv and the loops oneDNN does not
/// run): `threads - 1` workers beside the thread that calls Run. Built for many short parallel
/// regions on cores that may be shared (DESIGN.md, "Runtime contract"):
/// - work is handed out in chunks that each thread claims as it gets to it, so the caller never
///   waits for a worker that has not started (one that lost its core, or is still waking): at
///   worst it does every chunk itself, as with one thread;
/// - an idle worker spins for a short while (kSpinNs) for the next region, then sleeps on a
///   futex: back-to-back regions start without a wake-up, and a worker with no work never
///   holds a core for longer than that.
class WorkTeam {
 public:
  /// How long an idle thread polls before it sleeps: about one gap between two regions of a
  /// conv 720p frame loop, far below a scheduler time slice.
  static constexpr int64_t kSpinNs = 50'000;

  /// `threads` >= 1 in all; the workers pin themselves to `cpus` (the whole set) when given.
  WorkTeam(int threads, std::vector<int> cpus);
  ~WorkTeam();
  WorkTeam(const WorkTeam&) = delete;
  WorkTeam& operator=(const WorkTeam&) = delete;

  int threads() const { return int(workers_.size()) + 1; }

  /// Calls body(begin, end, thread) over chunks that together cover [0, rows) exactly once,
  /// `thread` in [0, threads()) naming the calling thread (for per-thread scratch; one thread
  /// runs its chunks one after the other). Returns when every chunk is done. Not reentrant;
  /// one caller at a time.
  void Run(int rows, const std::function<void(int begin, int end, int thread)>& body);

 private:
  void WorkerLoop(int id, const std::vector<int>& cpus);
  // Claims and runs chunks of job `generation` until none is left or a later job replaced it.
  void Work(uint32_t generation, int id);

  // gen << 32 | chunks << 16 | next chunk: a claim succeeds only for the job it was meant for.
  std::atomic<uint64_t> job_{0};
  std::atomic<uint32_t> generation_{0};  // futex word the idle workers wait on
  std::atomic<uint32_t> done_{0};        // chunks finished of the current job; the caller's futex
  std::atomic<int> sleepers_{0};         // workers in FUTEX_WAIT on generation_
  std::atomic<bool> caller_sleeps_{false};
  std::atomic<bool> stop_{false};
  const std::function<void(int, int, int)>* body_ = nullptr;
  int rows_ = 0;
  int chunks_ = 0;
  std::vector<std::thread> workers_;
};

}  // namespace edgefd::runtime
