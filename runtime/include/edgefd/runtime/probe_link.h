#pragma once

// `edgefd-pipeline probe-link`: the bandwidth of the link between two stage pods, measured
// with plain TCP (what the gRPC links ride on). The server takes one client, counts the bytes
// it sends for a while and answers with how many arrived between the first and the last; the
// client turns that into megabits per second. Every wait has a deadline: an unreachable peer
// or a silent one is a clear error, never a hang.

#include <chrono>
#include <functional>
#include <string>

#include "edgefd/common/result.h"

namespace edgefd::runtime {

struct LinkProbe {
  uint64_t bytes = 0;
  double seconds = 0;  ///< first byte to last byte, at the server
  /// The connection's TCP payload per segment (TCP_INFO's snd_mss: options such as the
  /// timestamps already taken off) and its path MTU (IP_MTU); 0 when the kernel did not say.
  int mss = 0, mtu = 0;
  /// TCP payload rate: what arrived, headers not counted.
  double Mbps() const { return seconds > 0 ? double(bytes) * 8.0 / seconds / 1e6 : 0; }
  /// The link's rate as a shaper or NIC counts it (the planner's --link-mbps): every segment's
  /// mtu - mss bytes of IP and TCP headers and `link_header` bytes of Ethernet header
  /// (LinkFraming::link_header) on top of its mss bytes of payload. Mbps() when mss or mtu is
  /// unknown.
  double LineMbps(int link_header = 14) const {
    if (mss <= 0 || mtu <= mss) return Mbps();
    return Mbps() * double(mtu + link_header) / double(mss);
  }
};

/// Listens on `address` (":PORT", "HOST:PORT"; port 0 picks one, reported through
/// `on_listening`), serves one client and returns what it measured. An Error when no client
/// comes within `timeout` or the client stalls for that long.
Result<LinkProbe> ServeLinkProbe(const std::string& address, std::chrono::milliseconds timeout,
                                 const std::function<void(int port)>& on_listening = {});

/// Connects to `address` ("HOST:PORT"), sends for `duration`, and returns the server's
/// figures. An Error naming the address when it cannot connect, send or hear back within
/// `timeout`.
Result<LinkProbe> ProbeLink(const std::string& address, std::chrono::milliseconds duration,
                            std::chrono::milliseconds timeout);

}  // namespace edgefd::runtime
