#pragma once

// The plugin's side of the NRI socket: connects, registers, serves the runtime's calls through
// NriService, sends UpdateContainers, and reconnects when the runtime restarts (the socket
// goes away and comes back; the runtime then synchronizes the plugin again). One thread, one
// poll loop; nothing in it waits on the runtime, so a stop request ends it at once.

#include <chrono>
#include <filesystem>
#include <string>

#include "edgefd/nri/service.h"

namespace edgefd::nri {

struct SessionOptions {
  std::filesystem::path socket = "/var/run/nri/nri.sock";
  std::string plugin_name = "edgefd";
  /// Plugins are called in ascending index order (two digits).
  std::string plugin_index = "10";
  /// Between attempts while the socket is missing or refuses, doubling up to this (a new
  /// socket in its directory is noticed at once through inotify).
  std::chrono::milliseconds max_backoff{5000};
  /// How long the runtime has to answer RegisterPlugin and UpdateContainers.
  std::chrono::milliseconds call_timeout{5000};
};

class Session {
 public:
  Session(NriService& service, Metrics& metrics, SessionOptions options);

  /// Serves, reconnecting as needed, until `stop_fd` becomes readable.
  void Run(int stop_fd);

 private:
  enum class End { kStop, kClosed };
  End Serve(int fd, int stop_fd);
  bool WaitForSocket(int stop_fd, int inotify_fd, std::chrono::milliseconds timeout);

  NriService& service_;
  Metrics& metrics_;
  const SessionOptions options_;
};

}  // namespace edgefd::nri
