#include "edgefd/deviceplugin/claim_watch.h"

#include <poll.h>
#include <spdlog/spdlog.h>
#include <sys/inotify.h>

#include <cerrno>
#include <cstring>

#include "edgefd/deviceplugin/cdi.h"

namespace edgefd::deviceplugin {
namespace fs = std::filesystem;

namespace {

// How often to look for the checkpoint's directory while it does not exist.
constexpr int kLookForDirectoryMs = 1000;

}  // namespace

std::optional<std::string> ClaimHolds::HolderOf(std::string_view dra_name) const {
  if (!error.empty()) {
    return "an unknown DRA claim (the DRA checkpoint cannot be read: " + error +
           "; refusing rather than guessing)";
  }
  auto it = holders.find(dra_name);
  if (it == holders.end()) return std::nullopt;
  return it->second;
}

ClaimHolds ReadClaimHolds(const DraCheckpoint& checkpoint) {
  auto text = checkpoint.Read();
  if (!text) return ClaimHolds{text.error().message, {}};
  return HoldsFrom(checkpoint, *text);
}

ClaimHolds HoldsFrom(const DraCheckpoint& checkpoint, const std::optional<std::string>& text) {
  ClaimHolds holds;
  if (!text) return holds;  // no file: no claims
  auto claims = checkpoint.Parse(*text);
  if (!claims) {
    holds.error = claims.error().message;
    return holds;
  }
  for (const auto& [uid, claim] : *claims) {
    for (const PreparedDevice& d : claim.devices) {
      // Every device of the checkpoint is this node's: the driver prepares only its own pool.
      holds.holders.emplace(d.device,
                            "ResourceClaim " + claim.ns + "/" + claim.name + " (uid " + uid + ")");
    }
  }
  return holds;
}

void ApplyHolds(const ClaimHolds& holds, ResourceSnapshot& snapshot) {
  for (PluginDevice& d : snapshot.devices) {
    d.held_by = holds.HolderOf(DeviceName(snapshot, d)).value_or("");
  }
}

DraClaimWatch::DraClaimWatch(fs::path checkpoint, Metrics* metrics)
    : checkpoint_(std::move(checkpoint)), metrics_(metrics) {}

DraClaimWatch::~DraClaimWatch() { Stop(); }

Status DraClaimWatch::Start() {
  if (started_) return Error{"the DRA checkpoint watch is already started"};
  inotify_fd_.Reset(::inotify_init1(IN_NONBLOCK | IN_CLOEXEC));
  if (!inotify_fd_.valid()) return Error{std::string("inotify_init1: ") + std::strerror(errno)};
  if (Status s = waker_.Open(); !s) return s;
  // Watch before reading, so that a claim prepared in between is not missed.
  if (!AddWatch()) {
    spdlog::info("{} does not exist: no DRA claims on this node (looking again every {} ms)",
                 path().parent_path().string(), kLookForDirectoryMs);
  }
  ReadNow();
  started_ = true;
  thread_ = std::thread([this] { Loop(); });
  return Ok{};
}

void DraClaimWatch::Stop() {
  if (!started_) return;
  started_ = false;
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  waker_.Wake();
  thread_.join();
  inotify_fd_.Reset();
  waker_.Close();
}

ClaimHolds DraClaimWatch::Current(uint64_t* version) const {
  std::lock_guard lock(mu_);
  if (version != nullptr) *version = version_;
  return holds_;
}

ClaimHolds DraClaimWatch::ReadNow() {
  std::lock_guard order(listeners_mu_);
  ClaimHolds holds;
  if (auto text = checkpoint_.Read(); !text) {
    holds.error = text.error().message;
    text_.reset();
  } else if (text_ && *text_ == *text) {
    std::lock_guard lock(mu_);
    return holds_;  // the same bytes as last time: the same holds
  } else {
    holds = HoldsFrom(checkpoint_, *text);
    text_ = std::move(*text);
  }
  {
    std::lock_guard lock(mu_);
    if (holds == holds_ && version_ != 0) return holds;
    if (!holds.error.empty() && holds.error != holds_.error) {
      spdlog::error("{}: refusing every device to the kubelet until it can be read", holds.error);
    } else if (holds.error.empty()) {
      spdlog::info("{}: prepared DRA claims hold {} device(s); the device plugin withdraws them",
                   path().string(), holds.holders.size());
    }
    holds_ = holds;
    ++version_;
  }
  if (metrics_ != nullptr) {
    metrics_->SetDraCheckpoint(holds.error.empty(), static_cast<int>(holds.holders.size()));
  }
  for (auto& [handle, listener] : listeners_) listener();
  return holds;
}

int DraClaimWatch::AddListener(std::function<void()> listener) {
  std::lock_guard lock(listeners_mu_);
  listeners_[next_listener_] = std::move(listener);
  return next_listener_++;
}

void DraClaimWatch::RemoveListener(int handle) {
  std::lock_guard lock(listeners_mu_);
  listeners_.erase(handle);
}

bool DraClaimWatch::AddWatch() {
  watch_ = ::inotify_add_watch(inotify_fd_.get(), path().parent_path().c_str(),
                               IN_CREATE | IN_CLOSE_WRITE | IN_MOVED_TO | IN_MOVED_FROM |
                                   IN_DELETE | IN_DELETE_SELF | IN_MOVE_SELF);
  return watch_ >= 0;
}

// Reads every pending event, and the checkpoint again when one concerns it (or events were
// lost).
void DraClaimWatch::Drain() {
  const std::string name = path().filename().string();
  bool reread = false;
  alignas(inotify_event) char buf[8 * 1024];
  for (;;) {
    ssize_t n = ::read(inotify_fd_.get(), buf, sizeof buf);
    if (n <= 0) break;  // EAGAIN: drained
    for (char* p = buf; p < buf + n;) {
      auto* ev = reinterpret_cast<inotify_event*>(p);
      p += sizeof(inotify_event) + ev->len;
      if (ev->mask & (IN_Q_OVERFLOW | IN_DELETE_SELF | IN_MOVE_SELF | IN_IGNORED)) reread = true;
      if (ev->mask & IN_IGNORED) watch_ = -1;  // the directory went away: look for it again
      if (ev->len > 0 && name == ev->name) reread = true;
    }
  }
  if (reread) ReadNow();
}

void DraClaimWatch::Loop() {
  for (;;) {
    {
      std::lock_guard lock(mu_);
      if (stop_) return;
    }
    if (watch_ < 0 && AddWatch()) {
      spdlog::info("{} appeared: following the DRA checkpoint", path().parent_path().string());
      ReadNow();
    }
    pollfd fds[2] = {{inotify_fd_.get(), POLLIN, 0}, {waker_.fd(), POLLIN, 0}};
    int rc = ::poll(fds, 2, watch_ < 0 ? kLookForDirectoryMs : -1);
    if (rc < 0 && errno != EINTR) {
      spdlog::error("poll on the DRA checkpoint watch: {}", std::strerror(errno));
      return;
    }
    if (fds[0].revents & POLLIN) Drain();
    if (fds[1].revents & POLLIN) waker_.Drain();
  }
}

}  // namespace edgefd::deviceplugin
