#include "edgefd/common/file_watch.h"

#include <poll.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <system_error>
#include <thread>

#include "edgefd/common/unique_fd.h"

namespace edgefd {
namespace fs = std::filesystem;

namespace {

constexpr uint32_t kDirectoryEvents = IN_CLOSE_WRITE | IN_MODIFY | IN_ATTRIB | IN_MOVED_TO |
                                      IN_MOVED_FROM | IN_CREATE | IN_DELETE | IN_DELETE_SELF |
                                      IN_MOVE_SELF | IN_ONLYDIR;

// The kubelet's atomic writer: `..data` is the link it swaps, `..data_tmp` the one it renames.
constexpr std::string_view kKubeletDataLink = "..data";

// A directory the kubelet made for one version of a volume (`..2026_12_05_20_27_43.123`): it
// is deleted at the next update, and the `..data` link in the parent says when that happens.
bool IsVersionedVolumeDir(const fs::path& dir) {
  return std::any_of(dir.begin(), dir.end(), [](const fs::path& part) {
    const std::string s = part.string();
    return s.size() > 2 && s.compare(0, 2, "..") == 0;
  });
}

std::string Errno() { return std::strerror(errno); }

}  // namespace

struct FileWatcher::State {
  std::vector<fs::path> files;
  Options options;
  std::function<void()> on_change;
  UniqueFd inotify;
  UniqueFd stop;
  std::thread thread;
  mutable std::mutex mu;                            // guards `watches` for WatchedDirectories
  std::map<int, fs::path> watches;                  // wd -> directory
  std::map<fs::path, std::set<std::string>> names;  // directory -> names that matter there

  // The directories and names the files need now: each file's own directory (its name and
  // the kubelet's `..data`), and the directory a link resolves into when that is elsewhere.
  std::map<fs::path, std::set<std::string>> Wanted() const {
    std::map<fs::path, std::set<std::string>> wanted;
    for (const fs::path& f : files) {
      auto& own = wanted[f.parent_path()];
      own.insert(f.filename().string());
      own.insert(std::string(kKubeletDataLink));
      std::error_code ec;
      fs::path target = fs::weakly_canonical(f, ec);
      if (ec || target.parent_path() == f.parent_path()) continue;
      if (IsVersionedVolumeDir(target.parent_path())) continue;
      wanted[target.parent_path()].insert(target.filename().string());
    }
    return wanted;
  }

  // Brings the watches in line with Wanted(). A directory that does not exist (yet) is left
  // out; `required` makes that an error for the files' own directories.
  Status Sync(bool required) {
    auto wanted = Wanted();
    std::lock_guard lock(mu);
    for (auto it = watches.begin(); it != watches.end();) {
      if (wanted.count(it->second) == 0) {
        ::inotify_rm_watch(inotify.get(), it->first);
        it = watches.erase(it);
      } else {
        ++it;
      }
    }
    std::set<fs::path> own;
    for (const fs::path& f : files) own.insert(f.parent_path());
    for (const auto& [dir, _] : wanted) {
      int wd = ::inotify_add_watch(inotify.get(), dir.c_str(), kDirectoryEvents);
      if (wd < 0) {
        if (required && own.count(dir) != 0) {
          return Error{dir.string() +
                       ": cannot watch the directory (inotify_add_watch: " + Errno() + ")"};
        }
        continue;
      }
      watches[wd] = dir;  // the same directory yields the same wd
    }
    names = std::move(wanted);
    return Ok{};
  }

  // Reads what inotify has; true when an event concerns a watched file.
  bool Drain() {
    alignas(inotify_event) char buf[16 * 1024];
    bool relevant = false;
    for (;;) {
      ssize_t n = ::read(inotify.get(), buf, sizeof buf);
      if (n <= 0) break;  // EAGAIN: drained
      for (char* p = buf; p < buf + n;) {
        auto* ev = reinterpret_cast<inotify_event*>(p);
        p += sizeof(inotify_event) + ev->len;
        relevant = Relevant(*ev) || relevant;
      }
    }
    return relevant;
  }

  bool Relevant(const inotify_event& ev) {
    // Lost events, or a watched directory gone or moved: look again, assume a change.
    if (ev.mask & (IN_Q_OVERFLOW | IN_IGNORED | IN_DELETE_SELF | IN_MOVE_SELF)) {
      if (ev.mask & IN_IGNORED) {
        std::lock_guard lock(mu);
        watches.erase(ev.wd);
      }
      return true;
    }
    if (ev.len == 0) return false;
    std::lock_guard lock(mu);
    auto dir = watches.find(ev.wd);
    if (dir == watches.end()) return false;
    auto wanted = names.find(dir->second);
    return wanted != names.end() && wanted->second.count(ev.name) != 0;
  }

  void Loop() {
    using Clock = std::chrono::steady_clock;
    std::optional<Clock::time_point> first, last;
    for (;;) {
      int timeout_ms = -1;
      if (first) {
        auto due = std::min(*last + options.quiet, *first + options.max_delay);
        auto left = std::chrono::ceil<std::chrono::milliseconds>(due - Clock::now());
        timeout_ms = static_cast<int>(std::max<int64_t>(0, left.count()));
      }
      pollfd fds[2] = {{inotify.get(), POLLIN, 0}, {stop.get(), POLLIN, 0}};
      int ready = ::poll(fds, 2, timeout_ms);
      if (ready < 0 && errno != EINTR) return;
      if (fds[1].revents != 0) return;
      if (fds[0].revents & POLLIN && Drain()) {
        last = Clock::now();
        if (!first) first = last;
      }
      if (first && Clock::now() >= std::min(*last + options.quiet, *first + options.max_delay)) {
        first.reset();
        // A link may now point elsewhere, a deleted directory may be back.
        (void)Sync(/*required=*/false);
        on_change();
      }
    }
  }
};

FileWatcher::FileWatcher(std::vector<fs::path> files, Options options)
    : state_(std::make_unique<State>()) {
  for (fs::path& f : files) {
    std::error_code ec;
    fs::path absolute = fs::absolute(f, ec);
    state_->files.push_back((ec ? f : absolute).lexically_normal());
  }
  state_->options = options;
}

FileWatcher::~FileWatcher() { Stop(); }

Status FileWatcher::Start(std::function<void()> on_change) {
  State& s = *state_;
  s.inotify.Reset(::inotify_init1(IN_NONBLOCK | IN_CLOEXEC));
  if (!s.inotify.valid()) return Error{"inotify_init1: " + Errno()};
  s.stop.Reset(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
  if (!s.stop.valid()) return Error{"eventfd: " + Errno()};
  // Watch before the caller reads the files, so a change in between is not missed.
  if (Status synced = s.Sync(/*required=*/true); !synced) {
    s.inotify.Reset();
    return synced;
  }
  s.on_change = std::move(on_change);
  s.thread = std::thread([&s] { s.Loop(); });
  return Ok{};
}

void FileWatcher::Stop() {
  State& s = *state_;
  if (!s.thread.joinable()) return;
  uint64_t one = 1;
  [[maybe_unused]] ssize_t n = ::write(s.stop.get(), &one, sizeof one);
  s.thread.join();
}

std::vector<fs::path> FileWatcher::WatchedDirectories() const {
  std::lock_guard lock(state_->mu);
  std::set<fs::path> dirs;
  for (const auto& [wd, dir] : state_->watches) dirs.insert(dir);
  return {dirs.begin(), dirs.end()};
}

}  // namespace edgefd
