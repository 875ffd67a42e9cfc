#include "edgefd/common/file_watch.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <mutex>

#include "edgefd/testing/files.h"

namespace edgefd {
namespace {

namespace fs = std::filesystem;
using ::testing::Contains;
using ::testing::Not;

// Counts the watcher's callbacks; waits on a condition variable with a deadline.
class Changes {
 public:
  void Notify() {
    {
      std::lock_guard lock(mu_);
      ++count_;
    }
    cv_.notify_all();
  }
  int count() {
    std::lock_guard lock(mu_);
    return count_;
  }
  /// Whether the count passes `seen` within 5 s.
  bool WaitPast(int seen) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, std::chrono::seconds(5), [&] { return count_ > seen; });
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  int count_ = 0;
};

FileWatcher::Options Fast() {
  return {std::chrono::milliseconds(5), std::chrono::milliseconds(50)};
}

TEST(FileWatcher, SeesAFileEditedInPlace) {
  testing::TempDir dir;
  fs::path file = dir.Write("rules.yaml", "a: 1\n");
  Changes changes;
  FileWatcher watcher({file}, Fast());
  ASSERT_TRUE(watcher.Start([&] { changes.Notify(); }).ok());
  testing::WriteFile(file, "a: 2\n");
  EXPECT_TRUE(changes.WaitPast(0));
}

TEST(FileWatcher, SeesAFileReplacedByRename) {
  testing::TempDir dir;
  fs::path file = dir.Write("rules.yaml", "a: 1\n");
  Changes changes;
  FileWatcher watcher({file}, Fast());
  ASSERT_TRUE(watcher.Start([&] { changes.Notify(); }).ok());
  fs::path temp = dir.Write(".rules.yaml.swp", "a: 2\n");
  // Writing the editor's temp file is no change of the rules file...
  fs::rename(temp, file);
  // ...the rename is.
  EXPECT_TRUE(changes.WaitPast(0));
}

TEST(FileWatcher, SeesAConfigMapUpdateSwapTheDataLink) {
  testing::TempDir dir;
  testing::ProjectedVolume volume(dir.path());
  volume.Publish({{"rules.yaml", "a: 1\n"}});
  const fs::path file = volume.path() / "rules.yaml";
  Changes changes;
  FileWatcher watcher({file}, Fast());
  ASSERT_TRUE(watcher.Start([&] { changes.Notify(); }).ok());
  // The timestamped directories are not watched: they go at the next update.
  EXPECT_THAT(watcher.WatchedDirectories(), Not(Contains(fs::canonical(file).parent_path())));
  volume.Publish({{"rules.yaml", "a: 2\n"}});
  ASSERT_TRUE(changes.WaitPast(0));
  int seen = changes.count();
  volume.Publish({{"rules.yaml", "a: 3\n"}});
  EXPECT_TRUE(changes.WaitPast(seen));
  EXPECT_EQ(testing::ReadFile(file), "a: 3\n");
}

TEST(FileWatcher, FollowsALinkIntoAnotherDirectoryAndItsNewTarget) {
  testing::TempDir dir;
  fs::create_directory(dir.path() / "etc");
  fs::create_directory(dir.path() / "srv");
  fs::path target = dir.Write("srv/one.yaml", "a: 1\n");
  fs::path link = dir.path() / "etc" / "rules.yaml";
  fs::create_symlink(target, link);
  Changes changes;
  FileWatcher watcher({link}, Fast());
  ASSERT_TRUE(watcher.Start([&] { changes.Notify(); }).ok());
  EXPECT_THAT(watcher.WatchedDirectories(), Contains(fs::canonical(dir.path() / "srv")));
  testing::WriteFile(target, "a: 2\n");
  ASSERT_TRUE(changes.WaitPast(0));
  // The link now points at another file (replaced by a rename, as `ln -sf` does): the new
  // target's edits count, the old one's do not.
  fs::path other = dir.Write("srv/two.yaml", "b: 1\n");
  fs::create_symlink(other, dir.path() / "etc" / "new-link");
  int seen = changes.count();
  fs::rename(dir.path() / "etc" / "new-link", link);
  ASSERT_TRUE(changes.WaitPast(seen));
  seen = changes.count();
  testing::WriteFile(other, "b: 2\n");
  EXPECT_TRUE(changes.WaitPast(seen));
}

TEST(FileWatcher, SeesAFileDeletedAndCreated) {
  testing::TempDir dir;
  fs::path file = dir.Write("rules.yaml", "a: 1\n");
  Changes changes;
  FileWatcher watcher({file}, Fast());
  ASSERT_TRUE(watcher.Start([&] { changes.Notify(); }).ok());
  fs::remove(file);
  ASSERT_TRUE(changes.WaitPast(0));
  int seen = changes.count();
  testing::WriteFile(file, "a: 2\n");
  EXPECT_TRUE(changes.WaitPast(seen));
}

TEST(FileWatcher, IgnoresOtherFilesInTheDirectory) {
  testing::TempDir dir;
  fs::path file = dir.Write("rules.yaml", "a: 1\n");
  Changes changes;
  FileWatcher watcher({file}, Fast());
  ASSERT_TRUE(watcher.Start([&] { changes.Notify(); }).ok());
  for (int i = 0; i < 20; ++i) dir.Write("other" + std::to_string(i), "x");
  // A change of the watched file after the others, in one event (a rename): had the others
  // counted, there would be a callback before this one.
  fs::rename(dir.Write("other-new", "a: 2\n"), file);
  ASSERT_TRUE(changes.WaitPast(0));
  watcher.Stop();
  EXPECT_EQ(changes.count(), 1);
}

TEST(FileWatcher, ABurstIsReportedOnce) {
  testing::TempDir dir;
  fs::path file = dir.Write("rules.yaml", "a: 1\n");
  Changes changes;
  // A quiet period long enough that 50 writes in a row are one burst on a loaded machine.
  FileWatcher watcher({file}, {std::chrono::milliseconds(500), std::chrono::seconds(5)});
  ASSERT_TRUE(watcher.Start([&] { changes.Notify(); }).ok());
  for (int i = 0; i < 50; ++i) testing::WriteFile(file, "a: " + std::to_string(i) + "\n");
  ASSERT_TRUE(changes.WaitPast(0));
  watcher.Stop();
  EXPECT_EQ(changes.count(), 1);
}

TEST(FileWatcher, AMissingDirectoryIsAnErrorNamingIt) {
  testing::TempDir dir;
  FileWatcher watcher({dir.path() / "nope" / "rules.yaml"});
  Status started = watcher.Start([] {});
  ASSERT_FALSE(started.ok());
  EXPECT_THAT(started.error().message, ::testing::HasSubstr("nope"));
}

TEST(FileWatcher, StopsPromptlyAndTwice) {
  testing::TempDir dir;
  fs::path file = dir.Write("rules.yaml", "a: 1\n");
  FileWatcher watcher({file});
  ASSERT_TRUE(watcher.Start([] {}).ok());
  watcher.Stop();
  watcher.Stop();
}

}  // namespace
}  // namespace edgefd
