#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>

#include "edgefd/common/result.h"
#include "edgefd/common/unique_fd.h"
#include "edgefd/common/waker.h"
#include "edgefd/deviceplugin/dra_checkpoint.h"
#include "edgefd/deviceplugin/metrics.h"
#include "edgefd/deviceplugin/registry.h"

namespace edgefd::deviceplugin {

/// What prepared DRA claims hold, as the DRA checkpoint says: one half of the node's single
/// allocation record (the kubelet's device manager keeps the other).
struct ClaimHolds {
  /// Why the checkpoint cannot be read; empty when it could (a missing file reads as no
  /// claims). While set, the record vouches for no device, so every device counts as held:
  /// refuse, never guess.
  std::string error;
  /// DRA device name ("cpu4", "movidius-ncs-1-1-2") → the claim that holds it
  /// ("ResourceClaim default/cores (uid 1234)").
  std::map<std::string, std::string, std::less<>> holders;

  bool operator==(const ClaimHolds&) const = default;

  /// Who holds the device with this DRA name: the claim, the unreadable checkpoint, or
  /// nullopt when it is free.
  std::optional<std::string> HolderOf(std::string_view dra_name) const;
};

/// Reads `checkpoint` into ClaimHolds (an unreadable or corrupt file is `error`, naming it).
ClaimHolds ReadClaimHolds(const DraCheckpoint& checkpoint);
/// What the checkpoint's bytes `text` (nullopt: no file) say, as ReadClaimHolds.
ClaimHolds HoldsFrom(const DraCheckpoint& checkpoint, const std::optional<std::string>& text);

/// Marks every device of `snapshot` that `holds` holds (PluginDevice::held_by); the device
/// plugin then offers it as Unhealthy, prefers and allocates it never.
void ApplyHolds(const ClaimHolds& holds, ResourceSnapshot& snapshot);

/// Follows the DRA checkpoint file, which the DRA driver replaces atomically (rename): inotify
/// on its directory, and, while the directory does not exist (DRA not deployed yet), a look
/// every second. Keeps nothing but what the file says: a restarted device plugin reads it
/// again at Start. Safe from many threads.
class DraClaimWatch {
 public:
  /// `metrics` (may be null) must outlive the watch.
  explicit DraClaimWatch(std::filesystem::path checkpoint, Metrics* metrics = nullptr);
  ~DraClaimWatch();
  DraClaimWatch(const DraClaimWatch&) = delete;
  DraClaimWatch& operator=(const DraClaimWatch&) = delete;

  /// Reads the file once, then follows it on a thread of its own. Fails only when inotify
  /// or eventfd cannot be had.
  Status Start();
  /// Stops following. Idempotent.
  void Stop();

  const std::filesystem::path& path() const { return checkpoint_.path(); }
  /// The holds as last read, and a version that changes whenever they do.
  ClaimHolds Current(uint64_t* version = nullptr) const;
  /// Reads the file now (Allocate: the kubelet may call before the watch saw a new claim),
  /// tells listeners when that changed something, and returns it.
  ClaimHolds ReadNow();

  /// Called after the holds changed, on the thread that noticed. Returns a handle.
  int AddListener(std::function<void()> listener);
  /// After this returns the listener is never called again (do not call it from a listener).
  void RemoveListener(int handle);

 private:
  void Loop();
  bool AddWatch();
  void Drain();

  const DraCheckpoint checkpoint_;
  Metrics* metrics_;
  UniqueFd inotify_fd_;
  Waker waker_;
  int watch_ = -1;  // inotify watch of the directory; -1 while it does not exist
  std::thread thread_;
  bool started_ = false;

  mutable std::mutex mu_;  // guards holds_, version_, stop_
  ClaimHolds holds_;
  uint64_t version_ = 0;
  // The bytes holds_ came from (nullopt: no file), so that a read of the same bytes (most
  // Allocates) is not parsed again. Guarded by listeners_mu_.
  std::optional<std::optional<std::string>> text_;
  bool stop_ = false;

  // Held while listeners run (as InventoryRegistry does) and while a read is applied, so
  // listeners see changes in order.
  std::mutex listeners_mu_;
  std::map<int, std::function<void()>> listeners_;
  int next_listener_ = 1;
};

}  // namespace edgefd::deviceplugin
