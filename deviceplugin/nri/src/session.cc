#include "edgefd/nri/session.h"

#include <errno.h>
#include <poll.h>
#include <spdlog/spdlog.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <map>
#include <optional>

#include "edgefd/common/program.h"
#include "edgefd/common/unique_fd.h"
#include "edgefd/nri/ttrpc.h"
#include "nri/api.pb.h"
#include "ttrpc/ttrpc.pb.h"

namespace edgefd::nri {
namespace {

namespace api = ::nri::pkg::api::v1alpha1;
using Clock = std::chrono::steady_clock;

constexpr std::chrono::milliseconds kFirstBackoff{250};
// A write the runtime does not take within this ends the connection, so that a stop is never
// held up for long behind a runtime that stopped reading.
constexpr int kSendTimeoutMs = 500;

// Connects to the unix socket at `path`; the errno text when that fails.
Result<UniqueFd> Connect(const std::filesystem::path& path) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  const std::string p = path.string();
  if (p.size() >= sizeof(addr.sun_path)) return Error{"socket path too long"};
  std::memcpy(addr.sun_path, p.c_str(), p.size() + 1);
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd.valid()) return Error{strerror(errno)};
  if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    return Error{strerror(errno)};
  }
  timeval tv{0, kSendTimeoutMs * 1000};
  ::setsockopt(fd.get(), SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
  return fd;
}

bool WriteAll(int fd, std::string_view bytes) {
  while (!bytes.empty()) {
    ssize_t n = ::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    bytes.remove_prefix(static_cast<size_t>(n));
  }
  return true;
}

// One connection's state: the decoders, the calls awaiting the runtime's answer.
class Connection {
 public:
  Connection(int fd, NriService& service, Metrics& metrics, const SessionOptions& options)
      : fd_(fd), service_(service), metrics_(metrics), options_(options) {}

  bool registered() const { return registered_; }

  // Sends RegisterPlugin; false when the socket would not take it.
  bool Register() {
    api::RegisterPluginRequest req;
    req.set_plugin_name(options_.plugin_name);
    req.set_plugin_idx(options_.plugin_index);
    req.set_nri_version("edgefd-" + std::string(Version()));
    return Call("RegisterPlugin", req.SerializeAsString(), Pending{true, 0, {}});
  }

  // Takes bytes read from the trunk; false when the connection must end.
  bool Receive(std::string_view bytes) {
    mux_.Feed(bytes);
    for (;;) {
      Result<std::optional<MuxFrame>> frame = mux_.Next();
      if (!frame) return ProtocolError(frame.error().message);
      if (!*frame) return true;
      if (!Dispatch(**frame)) return false;
    }
  }

  // Ends calls past their deadline; false when registration timed out. `next` is set to the
  // nearest deadline left.
  bool Expire(std::optional<Clock::time_point>& next) {
    next.reset();
    const auto now = Clock::now();
    for (auto it = pending_.begin(); it != pending_.end();) {
      if (it->second.deadline > now) {
        if (!next || it->second.deadline < *next) next = it->second.deadline;
        ++it;
        continue;
      }
      if (it->second.register_call) {
        spdlog::error("the runtime did not answer RegisterPlugin within {} ms",
                      options_.call_timeout.count());
        return false;
      }
      metrics_.update_failures.fetch_add(it->second.updates, std::memory_order_relaxed);
      spdlog::warn("the runtime did not answer UpdateContainers ({} container(s)) in time",
                   it->second.updates);
      it = pending_.erase(it);
    }
    return true;
  }

 private:
  struct Pending {
    bool register_call = false;
    size_t updates = 0;
    Clock::time_point deadline;
  };

  bool ProtocolError(const std::string& what) {
    metrics_.protocol_errors.fetch_add(1, std::memory_order_relaxed);
    spdlog::error("{}: closing the connection", what);
    return false;
  }

  // A message that breaks no framing but makes no sense here: dropped and counted.
  void Drop(const std::string& what) {
    metrics_.protocol_errors.fetch_add(1, std::memory_order_relaxed);
    spdlog::warn("dropped {}", what);
  }

  bool Dispatch(MuxFrame& frame) {
    const bool serving = frame.conn == kPluginServiceConn;
    if (!serving && frame.conn != kRuntimeServiceConn) {
      // NRI's own mux drops frames for connections nobody opened.
      Drop(fmt::format("a frame for unknown NRI mux connection {}", frame.conn));
      return true;
    }
    TtrpcDecoder& decoder = serving ? plugin_conn_ : runtime_conn_;
    decoder.Feed(frame.payload);
    for (;;) {
      Result<std::optional<TtrpcMessage>> message = decoder.Next();
      if (!message) return ProtocolError(message.error().message);
      if (!*message) return true;
      if (!(serving ? Serve(**message) : Answered(**message))) return false;
    }
  }

  // A call of the runtime to the plugin.
  bool Serve(const TtrpcMessage& message) {
    if (message.type != static_cast<uint8_t>(MessageType::kRequest)) {
      Drop(fmt::format("a ttrpc message of type {} on the plugin's service", message.type));
      return true;
    }
    if (message.stream % 2 == 0) {
      Drop(fmt::format("a request on stream {} (clients use odd streams)", message.stream));
      return true;
    }
    ::ttrpc::Request request;
    Answer answer;
    if (message.flags != 0) {
      answer = {kStatusUnimplemented, "streaming requests are not served", "", {}};
    } else if (!request.ParseFromString(message.data)) {
      answer = {kStatusInvalidArgument, "the ttrpc request does not parse", "", {}};
    } else {
      answer = service_.Handle(request.service(), request.method(), request.payload());
    }
    spdlog::debug("{} (stream {}, {} bytes): status {}, {} bytes", request.method(), message.stream,
                  message.data.size(), answer.code, answer.payload.size());
    ::ttrpc::Response response;
    response.mutable_status()->set_code(answer.code);
    response.mutable_status()->set_message(answer.message);
    response.set_payload(std::move(answer.payload));
    Result<std::string> bytes =
        EncodeTtrpc(message.stream, MessageType::kResponse, 0, response.SerializeAsString());
    if (!bytes) {
      spdlog::error("answer to {}: {}", request.method(), bytes.error().message);
      response.clear_payload();
      response.mutable_status()->set_code(kStatusInternal);
      response.mutable_status()->set_message(bytes.error().message);
      bytes = EncodeTtrpc(message.stream, MessageType::kResponse, 0, response.SerializeAsString());
    }
    if (!WriteAll(fd_, EncodeMux(kPluginServiceConn, *bytes))) return false;
    if (!answer.unsolicited.empty()) return SendUpdates(answer.unsolicited);
    return true;
  }

  bool SendUpdates(const std::vector<CpusetUpdate>& updates) {
    api::UpdateContainersRequest req;
    for (const CpusetUpdate& u : updates) {
      api::ContainerUpdate* update = req.add_update();
      update->set_container_id(u.id);
      update->mutable_linux()->mutable_resources()->mutable_cpu()->set_cpus(u.cpus);
      update->set_ignore_failure(true);
    }
    metrics_.updates.fetch_add(updates.size(), std::memory_order_relaxed);
    return Call("UpdateContainers", req.SerializeAsString(), Pending{false, updates.size(), {}});
  }

  bool Call(const std::string& method, std::string payload, Pending pending) {
    ::ttrpc::Request request;
    request.set_service(std::string(kRuntimeService));
    request.set_method(method);
    request.set_payload(std::move(payload));
    request.set_timeout_nano(std::chrono::nanoseconds(options_.call_timeout).count());
    const uint32_t stream = next_stream_;
    next_stream_ += 2;
    Result<std::string> bytes =
        EncodeTtrpc(stream, MessageType::kRequest, 0, request.SerializeAsString());
    if (!bytes) {
      spdlog::error("{}: {}", method, bytes.error().message);
      metrics_.update_failures.fetch_add(pending.updates, std::memory_order_relaxed);
      return !pending.register_call;
    }
    pending.deadline = Clock::now() + options_.call_timeout;
    pending_[stream] = pending;
    return WriteAll(fd_, EncodeMux(kRuntimeServiceConn, *bytes));
  }

  // The runtime's answer to a call of the plugin.
  bool Answered(const TtrpcMessage& message) {
    auto it = pending_.find(message.stream);
    if (message.type != static_cast<uint8_t>(MessageType::kResponse) || it == pending_.end()) {
      Drop(fmt::format("a ttrpc message of type {} on stream {} of the runtime's service",
                       message.type, message.stream));
      return true;
    }
    const Pending pending = it->second;
    pending_.erase(it);
    ::ttrpc::Response response;
    const bool parsed = response.ParseFromString(message.data);
    const int code = parsed ? response.status().code() : kStatusInvalidArgument;
    const std::string why = parsed ? response.status().message() : "the answer does not parse";
    if (pending.register_call) {
      if (code != kStatusOk) {
        spdlog::error("the runtime refused RegisterPlugin: {} (code {})", why, code);
        return false;
      }
      registered_ = true;
      metrics_.connected = true;
      metrics_.connections.fetch_add(1, std::memory_order_relaxed);
      spdlog::info("registered with the runtime at {} as {}-{}", options_.socket.string(),
                   options_.plugin_index, options_.plugin_name);
      return true;
    }
    api::UpdateContainersResponse rsp;
    if (code != kStatusOk || !rsp.ParseFromString(response.payload())) {
      metrics_.update_failures.fetch_add(pending.updates, std::memory_order_relaxed);
      spdlog::warn("UpdateContainers failed: {} (code {})", why, code);
      return true;
    }
    metrics_.update_failures.fetch_add(rsp.failed_size(), std::memory_order_relaxed);
    for (const api::ContainerUpdate& failed : rsp.failed()) {
      spdlog::warn("the runtime could not update the cpuset of container {}",
                   failed.container_id());
    }
    return true;
  }

  const int fd_;
  NriService& service_;
  Metrics& metrics_;
  const SessionOptions& options_;
  MuxDecoder mux_;
  TtrpcDecoder plugin_conn_;   // the runtime's requests
  TtrpcDecoder runtime_conn_;  // the runtime's answers
  uint32_t next_stream_ = 1;
  std::map<uint32_t, Pending> pending_;
  bool registered_ = false;
};

}  // namespace

Session::Session(NriService& service, Metrics& metrics, SessionOptions options)
    : service_(service), metrics_(metrics), options_(std::move(options)) {}

bool Session::WaitForSocket(int stop_fd, int inotify_fd, std::chrono::milliseconds timeout) {
  pollfd fds[2] = {{stop_fd, POLLIN, 0}, {inotify_fd, POLLIN, 0}};
  const int n = ::poll(fds, inotify_fd >= 0 ? 2 : 1, static_cast<int>(timeout.count()));
  if (n > 0 && (fds[1].revents & POLLIN)) {
    char drain[4096];
    while (::read(inotify_fd, drain, sizeof(drain)) > 0) {
    }
  }
  return n > 0 && (fds[0].revents & POLLIN);
}

void Session::Run(int stop_fd) {
  // A socket created in the directory (the runtime starting) wakes the wait at once; the
  // backoff covers a directory that does not exist yet and a socket that refuses.
  UniqueFd inotify(::inotify_init1(IN_NONBLOCK | IN_CLOEXEC));
  const std::string dir = options_.socket.parent_path().string();
  bool watching = false;
  bool advised = false;
  auto backoff = kFirstBackoff;
  for (;;) {
    if (!watching && inotify.valid()) {
      watching =
          ::inotify_add_watch(inotify.get(), dir.c_str(), IN_CREATE | IN_MOVED_TO | IN_ATTRIB) >= 0;
    }
    Result<UniqueFd> fd = Connect(options_.socket);
    if (!fd) {
      if (!advised) {
        spdlog::warn(
            "NRI not available at {} ({}): cores are advice only; connecting when it "
            "appears",
            options_.socket.string(), fd.error().message);
        advised = true;
      } else {
        spdlog::debug("NRI socket {}: still unavailable ({})", options_.socket.string(),
                      fd.error().message);
      }
      if (WaitForSocket(stop_fd, watching ? inotify.get() : -1, backoff)) return;
      backoff = std::min(backoff * 2, options_.max_backoff);
      continue;
    }
    backoff = kFirstBackoff;
    const End end = Serve(fd->get(), stop_fd);
    const bool was_connected = metrics_.connected.exchange(false);
    metrics_.synchronized = false;
    if (end == End::kStop) return;
    if (was_connected) {
      metrics_.disconnects.fetch_add(1, std::memory_order_relaxed);
      spdlog::warn("the NRI connection at {} closed (runtime restarting?): reconnecting",
                   options_.socket.string());
    }
    advised = false;
    // Not straight back: a runtime that accepts and drops at once must not spin us.
    if (WaitForSocket(stop_fd, -1, kFirstBackoff)) return;
  }
}

Session::End Session::Serve(int fd, int stop_fd) {
  service_.Reset();
  Connection conn(fd, service_, metrics_, options_);
  if (!conn.Register()) return End::kClosed;
  std::string buffer(64 * 1024, '\0');
  for (;;) {
    std::optional<Clock::time_point> next;
    if (!conn.Expire(next)) return End::kClosed;
    int timeout = -1;
    if (next) {
      timeout = static_cast<int>(
          std::chrono::ceil<std::chrono::milliseconds>(*next - Clock::now()).count());
      timeout = std::max(timeout, 0);
    }
    pollfd fds[2] = {{stop_fd, POLLIN, 0}, {fd, POLLIN, 0}};
    const int n = ::poll(fds, 2, timeout);
    if (n < 0 && errno != EINTR) return End::kClosed;
    if (n <= 0) continue;
    if (fds[0].revents & POLLIN) return End::kStop;
    if (fds[1].revents & (POLLIN | POLLHUP | POLLERR)) {
      const ssize_t got = ::recv(fd, buffer.data(), buffer.size(), 0);
      if (got < 0 && errno == EINTR) continue;
      if (got <= 0) return End::kClosed;
      if (!conn.Receive(std::string_view(buffer.data(), static_cast<size_t>(got)))) {
        return End::kClosed;
      }
    }
  }
}

}  // namespace edgefd::nri
