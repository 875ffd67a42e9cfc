#pragma once

#include <chrono>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "edgefd/common/result.h"

namespace edgefd {

/// Follows a few configuration files (the rules files) with inotify on their directories, so
/// it sees every way a file changes:
///  - edited in place (IN_CLOSE_WRITE, IN_MODIFY);
///  - replaced by a rename, as editors and `install` do (IN_MOVED_TO the file's name);
///  - a ConfigMap volume's update: the kubelet writes a new `..YYYY_MM_DD...` directory,
///    points `..data_tmp` at it and renames that over `..data` (IN_MOVED_TO `..data`); the
///    file itself is a link `NAME -> ..data/NAME` that never changes;
///  - a file that is a link into another directory (`/etc/edgefd/rules.yaml -> /srv/x.yaml`):
///    that directory is watched too, and the link is resolved again after every change;
///  - deleted, or created where none was.
/// Events of other names in the directory are ignored. A burst (a kubelet swap is four or five
/// events) is reported once, after `quiet` without another event or `max_delay` after its
/// first. No polling: the thread sleeps in poll(2) on the inotify descriptor and a stop
/// eventfd. What the callback makes of a change (read, compare, reload) is the caller's.
class FileWatcher {
 public:
  struct Options {
    std::chrono::milliseconds quiet{20};
    std::chrono::milliseconds max_delay{200};
  };

  explicit FileWatcher(std::vector<std::filesystem::path> files, Options options);
  explicit FileWatcher(std::vector<std::filesystem::path> files)
      : FileWatcher(std::move(files), Options{}) {}
  ~FileWatcher();
  FileWatcher(const FileWatcher&) = delete;
  FileWatcher& operator=(const FileWatcher&) = delete;

  /// Adds the watches and starts the thread; `on_change` runs on it once per burst. An error
  /// (no inotify, a directory that does not exist) names the path; nothing is started then.
  Status Start(std::function<void()> on_change);
  /// Ends the thread; no callback runs after Stop returns. Safe to call twice.
  void Stop();

  /// The directories watched now (tests).
  std::vector<std::filesystem::path> WatchedDirectories() const;

 private:
  struct State;
  std::unique_ptr<State> state_;
};

}  // namespace edgefd
