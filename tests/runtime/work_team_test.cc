// The runtime's own compute team (work_team.h): every row exactly once, on any team size and
// row count, whether its workers are spinning or asleep between regions.
#include "edgefd/runtime/work_team.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <thread>
#include <vector>

namespace edgefd::runtime {
namespace {

TEST(WorkTeam, EveryRowOnceOnAnyTeamSize) {
  for (int threads : {1, 2, 3, 4}) {
    WorkTeam team(threads, {});
    EXPECT_EQ(team.threads(), threads);
    for (int rows : {1, 2, 3, 7, 64, 1000, 70000}) {
      std::vector<std::atomic<int>> seen(size_t(rows) + 1);
      std::atomic<bool> bad_thread{false};
      for (int run = 0; run < 20; ++run) {
        // Now and then long enough apart that the workers have gone to sleep.
        if (run % 5 == 4) std::this_thread::sleep_for(std::chrono::milliseconds(2));
        team.Run(rows, [&](int begin, int end, int thread) {
          if (thread < 0 || thread >= threads) bad_thread = true;
          for (int r = begin; r < end; ++r) seen[size_t(r)].fetch_add(1);
        });
      }
      for (int r = 0; r < rows; ++r) {
        ASSERT_EQ(seen[size_t(r)].load(), 20)
            << threads << " threads, " << rows << " rows, row " << r;
      }
      EXPECT_EQ(seen[size_t(rows)].load(), 0);
      EXPECT_FALSE(bad_thread.load());
    }
  }
}

// Per-thread scratch is safe: one thread runs its chunks one after the other.
TEST(WorkTeam, AThreadRunsOneChunkAtATime) {
  WorkTeam team(3, {});
  std::vector<std::atomic<int>> inside(3);
  std::atomic<bool> overlap{false};
  for (int run = 0; run < 200; ++run) {
    team.Run(300, [&](int, int, int thread) {
      if (inside[size_t(thread)].fetch_add(1) != 0) overlap = true;
      std::this_thread::yield();
      inside[size_t(thread)].fetch_sub(1);
    });
  }
  EXPECT_FALSE(overlap.load());
}

TEST(WorkTeam, ATeamDestroyedRightAfterItsFirstJobEnds) {
  // A worker slow to start (qemu-user, a loaded core) once took the destructor's generation
  // for a job, missed the stop and slept for good, holding the destructor's join.
  for (int i = 0; i < 2000; ++i) {
    WorkTeam team(2, {});
    std::atomic<int> rows{0};
    team.Run(4, [&](int begin, int end, int) { rows += end - begin; });
    ASSERT_EQ(rows.load(), 4);
  }
}

}  // namespace
}  // namespace edgefd::runtime
