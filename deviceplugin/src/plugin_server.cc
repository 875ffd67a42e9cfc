#include "edgefd/deviceplugin/plugin_server.h"

#include <fcntl.h>
#include <grpcpp/grpcpp.h>
#include <poll.h>
#include <spdlog/spdlog.h>
#include <sys/inotify.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <optional>

#include "edgefd/deviceplugin/service.h"

namespace edgefd::deviceplugin {
namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

namespace {

constexpr const char* kKubeletSocket = "kubelet.sock";
constexpr const char* kApiVersion = "v1beta1";
constexpr auto kMinBackoff = std::chrono::milliseconds(50);
constexpr auto kMaxBackoff = std::chrono::milliseconds(5000);

// Only the kubelet should talk on a plugin's socket, but whatever reaches it could open
// connections and streams without end (a flood took the plugin from 13 to 193 MB). The
// kubelet holds one ListAndWatch stream and makes short unary calls whose requests name a
// few device IDs, so these bounds leave it ample room.
constexpr int kMaxRequestBytes = 1 << 20;
constexpr int kMaxStreamsPerConnection = 16;
constexpr size_t kTransportMemory = 16 << 20;                // per socket: what gRPC may buffer
constexpr auto kHandshakeTimeout = std::chrono::seconds(5);  // a connection that says nothing

// Inode of a path, 0 when it does not exist.
ino_t InodeOf(const fs::path& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return 0;
  return st.st_ino;
}

// Which file a path names: device, inode and birth time (the change time where the file
// system keeps no birth time). A socket the kubelet creates anew differs in all but maybe the
// inode; nullopt when it does not exist.
struct FileId {
  uint64_t dev = 0;
  uint64_t ino = 0;
  int64_t born_ns = 0;
  bool operator==(const FileId&) const = default;
};

std::optional<FileId> FileIdOf(const fs::path& path) {
  struct statx st {};
  if (::statx(AT_FDCWD, path.c_str(), 0, STATX_INO | STATX_BTIME | STATX_CTIME, &st) != 0) {
    return std::nullopt;
  }
  const struct statx_timestamp& t = (st.stx_mask & STATX_BTIME) ? st.stx_btime : st.stx_ctime;
  return FileId{(uint64_t{st.stx_dev_major} << 32) | st.stx_dev_minor, st.stx_ino,
                t.tv_sec * 1'000'000'000 + t.tv_nsec};
}

std::string LastErrorText() { return std::strerror(errno); }

}  // namespace

struct PluginServer::Plugin {
  std::string resource;
  fs::path socket;
  std::unique_ptr<DevicePluginService> service;
  std::unique_ptr<grpc::Server> server;
  ino_t inode = 0;  // of the socket we bound; tells our own unlink/bind events from others'
  bool need_serve = true;
  bool need_register = true;
  bool registered = false;
  // The kubelet.sock the last successful Register went to.
  std::optional<FileId> registered_with;
  int registrations = 0;
  std::chrono::milliseconds backoff = kMinBackoff;
  Clock::time_point next_try{};
};

std::string PluginServer::SocketName(const std::string& prefix, const std::string& resource) {
  std::string name = resource;
  if (name.starts_with(kResourceDomain)) name.erase(0, kResourceDomain.size());
  std::replace(name.begin(), name.end(), '/', '_');
  return prefix + name + ".sock";
}

PluginServer::PluginServer(DeviceRegistry& registry, PluginServerOptions options, Metrics* metrics,
                           DraClaimWatch* claims)
    : registry_(registry), options_(std::move(options)), metrics_(metrics), claims_(claims) {}

PluginServer::~PluginServer() { Stop(); }

Status PluginServer::Start() {
  if (started_) return Error{"device plugin server already started"};
  std::error_code ec;
  if (!fs::is_directory(options_.kubelet_dir, ec)) {
    return Error{options_.kubelet_dir.string() +
                 ": kubelet device-plugin directory does not exist (set --kubelet-dir)"};
  }
  inotify_fd_.Reset(::inotify_init1(IN_NONBLOCK | IN_CLOEXEC));
  if (!inotify_fd_.valid()) return Error{"inotify_init1: " + LastErrorText()};
  // Watch before serving, so nothing that happens in between is missed.
  if (::inotify_add_watch(inotify_fd_.get(), options_.kubelet_dir.c_str(),
                          IN_CREATE | IN_DELETE | IN_MOVED_TO | IN_MOVED_FROM) < 0) {
    return Error{options_.kubelet_dir.string() + ": inotify_add_watch: " + LastErrorText()};
  }
  if (Status s = waker_.Open(); !s) return s;

  for (const std::string& resource : registry_.ResourceNames()) {
    auto plugin = std::make_unique<Plugin>();
    plugin->resource = resource;
    plugin->socket = options_.kubelet_dir / SocketName(options_.socket_prefix, resource);
    if (Status s = Serve(*plugin); !s) {
      for (auto& p : plugins_) Shutdown(*p, /*remove_socket=*/true);
      plugins_.clear();
      return s;
    }
    plugins_.push_back(std::move(plugin));
  }
  if (plugins_.empty()) {
    spdlog::info("no resources to advertise yet; waiting for devices");
  }
  listener_ = registry_.AddListener([this](const std::string& resource) {
    if (!resource.empty()) return;  // device changes go to the services directly
    waker_.Wake();
  });
  Publish();
  started_ = true;
  thread_ = std::thread([this] { Loop(); });
  return Ok{};
}

void PluginServer::Stop() {
  if (!started_) return;
  started_ = false;
  registry_.RemoveListener(listener_);
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  waker_.Wake();
  thread_.join();
  for (auto& p : plugins_) Shutdown(*p, /*remove_socket=*/true);
  plugins_.clear();
  inotify_fd_.Reset();
  waker_.Close();
  Publish();
}

std::vector<PluginServer::ResourceState> PluginServer::State() const {
  std::lock_guard lock(mu_);
  return state_;
}

void PluginServer::Publish() {
  std::vector<ResourceState> state;
  for (const auto& p : plugins_) {
    state.push_back({p->resource, p->socket, p->registered, p->registrations});
    if (metrics_ != nullptr) metrics_->SetRegistered(p->resource, p->registered);
  }
  std::sort(state.begin(), state.end(),
            [](const ResourceState& a, const ResourceState& b) { return a.resource < b.resource; });
  std::lock_guard lock(mu_);
  state_ = std::move(state);
}

Status PluginServer::Serve(Plugin& plugin) {
  plugin.service = std::make_unique<DevicePluginService>(registry_, plugin.resource, metrics_,
                                                         options_.cdi, claims_);
  grpc::ServerBuilder builder;
  builder.AddListeningPort("unix:" + plugin.socket.string(), grpc::InsecureServerCredentials());
  builder.SetMaxReceiveMessageSize(kMaxRequestBytes);
  builder.AddChannelArgument(GRPC_ARG_MAX_CONCURRENT_STREAMS, kMaxStreamsPerConnection);
  builder.AddChannelArgument(
      GRPC_ARG_SERVER_HANDSHAKE_TIMEOUT_MS,
      int(std::chrono::duration_cast<std::chrono::milliseconds>(kHandshakeTimeout).count()));
  // Past the quota gRPC refuses new streams and resets those that want more ("Buffers full")
  // rather than growing the plugin.
  grpc::ResourceQuota quota("edgefd-device-plugin");
  quota.Resize(kTransportMemory);
  builder.SetResourceQuota(quota);
  builder.RegisterService(plugin.service.get());
  plugin.server = builder.BuildAndStart();
  if (!plugin.server) {
    plugin.service.reset();
    return Error{plugin.socket.string() + ": cannot serve the device-plugin socket for " +
                 plugin.resource + " (is the directory writable?)"};
  }
  plugin.inode = InodeOf(plugin.socket);
  plugin.need_serve = false;
  plugin.need_register = true;
  plugin.registered = false;
  plugin.backoff = kMinBackoff;
  plugin.next_try = Clock::time_point{};
  spdlog::info("serving {} on {}", plugin.resource, plugin.socket.string());
  return Ok{};
}

void PluginServer::Shutdown(Plugin& plugin, bool remove_socket) {
  if (plugin.server) {
    plugin.service->FinishStreams();
    plugin.server->Shutdown(std::chrono::system_clock::now() + std::chrono::milliseconds(500));
    plugin.server->Wait();
    plugin.server.reset();
  }
  plugin.service.reset();
  plugin.registered = false;
  // Remove the socket only if it is still the one we bound, never one someone else made.
  if (remove_socket && plugin.inode != 0 && InodeOf(plugin.socket) == plugin.inode) {
    std::error_code ec;
    fs::remove(plugin.socket, ec);
  }
  plugin.inode = 0;
}

bool PluginServer::Register(Plugin& plugin) {
  grpc::ChannelArguments args;
  // The kubelet may have bound kubelet.sock a moment before it listens: retry fast.
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 20);
  args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, 20);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 100);
  // A subchannel shared through gRPC's global pool would still be backing off from the
  // kubelet that just died; a fresh one connects at once.
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  auto channel =
      grpc::CreateCustomChannel("unix:" + (options_.kubelet_dir / kKubeletSocket).string(),
                                grpc::InsecureChannelCredentials(), args);
  auto stub = v1beta1::Registration::NewStub(channel);
  v1beta1::RegisterRequest request;
  request.set_version(kApiVersion);
  request.set_endpoint(plugin.socket.filename().string());
  request.set_resource_name(plugin.resource);
  *request.mutable_options() = PluginOptions();
  v1beta1::Empty response;
  grpc::ClientContext context;
  context.set_wait_for_ready(true);
  context.set_deadline(std::chrono::system_clock::now() + options_.register_timeout);
  grpc::Status status = stub->Register(&context, request, &response);
  // The kubelet connects to our endpoint before it answers Register. When that took longer
  // than our deadline (a kubelet busy starting up), it holds our endpoint while we retry,
  // and refuses every retry: "device plugin already connected". Its ListAndWatch stream on
  // this very server says the kubelet has us; without one (our server was replaced and the
  // kubelet has not yet seen the old stream end) the retries go on.
  if (!status.ok() && status.error_message().find("already connected") != std::string::npos &&
      plugin.service != nullptr && plugin.service->OpenStreams() > 0) {
    spdlog::info(
        "the kubelet already holds {} on {} (it finished an earlier Register after "
        "our deadline)",
        plugin.resource, request.endpoint());
    status = grpc::Status::OK;
  }
  if (metrics_ != nullptr) metrics_->CountRegistration(plugin.resource, status.ok());
  if (!status.ok()) {
    spdlog::warn("register {} with the kubelet: {} (retrying in {} ms)", plugin.resource,
                 status.error_message(), plugin.backoff.count());
    return false;
  }
  ++plugin.registrations;
  // The kubelet.sock that answered: the call waits for one to exist (wait_for_ready), so it
  // may have started before this one was created, and a kubelet that answers does not go and
  // have another one create its socket within the microseconds to this stat.
  plugin.registered_with = FileIdOf(options_.kubelet_dir / kKubeletSocket);
  spdlog::info("registered {} (endpoint {})", plugin.resource, request.endpoint());
  return true;
}

void PluginServer::SyncResources() {
  for (const std::string& resource : registry_.ResourceNames()) {
    bool known = std::any_of(plugins_.begin(), plugins_.end(),
                             [&](const auto& p) { return p->resource == resource; });
    if (known) continue;
    auto plugin = std::make_unique<Plugin>();
    plugin->resource = resource;
    plugin->socket = options_.kubelet_dir / SocketName(options_.socket_prefix, resource);
    plugins_.push_back(std::move(plugin));  // served by the loop below
  }
}

void PluginServer::HandleInotify() {
  alignas(inotify_event) char buf[16 * 1024];
  for (;;) {
    ssize_t n = ::read(inotify_fd_.get(), buf, sizeof buf);
    if (n <= 0) break;  // EAGAIN: drained
    for (char* p = buf; p < buf + n;) {
      auto* ev = reinterpret_cast<inotify_event*>(p);
      p += sizeof(inotify_event) + ev->len;
      if (ev->mask & IN_Q_OVERFLOW) {
        // Events were lost: assume the worst, check every socket and register again.
        spdlog::warn("inotify queue overflowed: checking every socket and registering again");
        for (auto& pl : plugins_) {
          pl->need_register = true;
          pl->next_try = Clock::time_point{};
          if (pl->inode == 0 || InodeOf(pl->socket) != pl->inode) pl->need_serve = true;
        }
        continue;
      }
      if (ev->len == 0) continue;
      const std::string name = ev->name;
      if (name == kKubeletSocket && (ev->mask & (IN_CREATE | IN_MOVED_TO))) {
        spdlog::info("kubelet.sock was created: registering again");
        if (metrics_ != nullptr) metrics_->CountKubeletRestart();
        const std::optional<FileId> kubelet = FileIdOf(options_.kubelet_dir / kKubeletSocket);
        for (auto& pl : plugins_) {
          // A retry that reached the new kubelet before this event was read has registered
          // with it already. A second Register of the resource is refused ("already
          // connected"), and the kubelet (1.37), dropping the refused client, forgets the
          // first one too: it never notices that one go away and refuses this resource's
          // every later registration, a restarted plugin's included, until it restarts.
          if (pl->registered && kubelet && pl->registered_with == kubelet) {
            spdlog::info("{} is registered with this kubelet already", pl->resource);
            continue;
          }
          pl->need_register = true;
          pl->registered = false;
          pl->backoff = kMinBackoff;
          pl->next_try = Clock::time_point{};
        }
        continue;
      }
      if (!(ev->mask & (IN_DELETE | IN_MOVED_FROM))) continue;
      for (auto& pl : plugins_) {
        if (pl->socket.filename() != name || pl->need_serve) continue;
        // Our own rebind unlinks the old file too; only a socket that is really gone (or
        // replaced by someone else's file) needs serving again.
        if (pl->inode != 0 && InodeOf(pl->socket) == pl->inode) continue;
        spdlog::info("{} was removed: serving it again", pl->socket.string());
        pl->need_serve = true;
      }
    }
  }
}

void PluginServer::Loop() {
  const fs::path kubelet_socket = options_.kubelet_dir / kKubeletSocket;
  bool waiting_logged = false;
  for (;;) {
    {
      std::lock_guard lock(mu_);
      if (stop_) return;
    }
    HandleInotify();
    SyncResources();
    const bool kubelet_up = fs::exists(kubelet_socket);
    for (auto& p : plugins_) {
      // A starting kubelet wipes the directory before it creates kubelet.sock; serving again
      // only once kubelet.sock exists keeps our new socket out of that wipe.
      if (!p->need_serve || !kubelet_up || Clock::now() < p->next_try) continue;
      Shutdown(*p, /*remove_socket=*/false);
      if (Status s = Serve(*p); !s) {
        spdlog::error("{}", s.error().message);
        p->need_serve = true;  // try again after a backoff
        p->next_try = Clock::now() + kMaxBackoff;
      }
    }
    if (!kubelet_up && !waiting_logged) {
      spdlog::info("waiting for the kubelet ({} does not exist)", kubelet_socket.string());
    }
    waiting_logged = !kubelet_up;
    auto wake_at = Clock::time_point::max();
    for (auto& p : plugins_) {
      if (p->need_serve) {
        if (kubelet_up) wake_at = std::min(wake_at, p->next_try);
        continue;
      }
      if (!p->need_register || !kubelet_up) continue;
      if (Clock::now() >= p->next_try) {
        if (Register(*p)) {
          p->need_register = false;
          p->registered = true;
          p->backoff = kMinBackoff;
        } else {
          p->next_try = Clock::now() + p->backoff;
          p->backoff = std::min(p->backoff * 2,
                                std::chrono::duration_cast<std::chrono::milliseconds>(kMaxBackoff));
        }
      }
      if (p->need_register) wake_at = std::min(wake_at, p->next_try);
    }
    Publish();

    int timeout_ms = -1;
    if (wake_at != Clock::time_point::max()) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(wake_at - Clock::now());
      timeout_ms = static_cast<int>(std::max<int64_t>(0, left.count()));
    }
    pollfd fds[2] = {{inotify_fd_.get(), POLLIN, 0}, {waker_.fd(), POLLIN, 0}};
    int rc = ::poll(fds, 2, timeout_ms);
    if (rc < 0 && errno != EINTR) {
      spdlog::error("poll: {}", LastErrorText());
      return;
    }
    if (fds[1].revents & POLLIN) waker_.Drain();
  }
}

}  // namespace edgefd::deviceplugin
