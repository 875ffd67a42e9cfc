#include "edgefd/testing/fake_apiserver.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <csignal>
#include <cstdlib>
#include <fstream>
#include <random>
#include <set>
#include <sstream>

#include "edgefd/common/http_wire.h"
#include "edgefd/common/json.h"
#include "edgefd/discovery/labels.h"
#include "status_body.h"

namespace edgefd::testing {
namespace fs = std::filesystem;

namespace {

using SslCtxPtr = std::shared_ptr<SSL_CTX>;
using SslPtr = std::unique_ptr<SSL, decltype(&SSL_free)>;

// A server context presenting `cert`/`key`; asks for client certificates signed by
// `client_ca` when given.
SslCtxPtr ServerContext(const fs::path& cert, const fs::path& key, const fs::path& client_ca) {
  SslCtxPtr ctx(SSL_CTX_new(TLS_server_method()), &SSL_CTX_free);
  if (SSL_CTX_use_certificate_chain_file(ctx.get(), cert.c_str()) != 1 ||
      SSL_CTX_use_PrivateKey_file(ctx.get(), key.c_str(), SSL_FILETYPE_PEM) != 1) {
    std::abort();  // a broken test PKI; nothing sensible to test
  }
  if (!client_ca.empty()) {
    SSL_CTX_load_verify_locations(ctx.get(), client_ca.c_str(), nullptr);
    // Ask for a client certificate, but let token-only clients in: the handler decides.
    SSL_CTX_set_verify(ctx.get(), SSL_VERIFY_PEER, [](int, X509_STORE_CTX*) { return 1; });
  }
  return ctx;
}

// `body` in chunks of at most 1000 bytes (RFC 9112 7.1), with a chunk extension and a
// trailer field a client must skip.
std::string Chunked(const std::string& body) {
  std::string out;
  for (size_t off = 0; off < body.size(); off += 1000) {
    size_t n = std::min<size_t>(1000, body.size() - off);
    char size[32];
    std::snprintf(size, sizeof size, "%zx;ext=1\r\n", n);
    out.append(size).append(body, off, n).append("\r\n");
  }
  return out + "0\r\nX-Trailer: t\r\n\r\n";
}

}  // namespace

std::string Base64(std::string_view bytes) {
  std::string out(4 * ((bytes.size() + 2) / 3) + 1, '\0');
  int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                          reinterpret_cast<const unsigned char*>(bytes.data()),
                          static_cast<int>(bytes.size()));
  out.resize(static_cast<size_t>(n));
  return out;
}

std::string KubeconfigYaml(const std::string& server, const std::string& ca_pem,
                           const std::string& user_yaml) {
  return "apiVersion: v1\nkind: Config\ncurrent-context: edge\n"
         "contexts:\n- name: edge\n  context: {cluster: c1, user: u1}\n"
         "clusters:\n- name: c1\n  cluster:\n    server: " +
         server + "\n    certificate-authority-data: " + Base64(ca_pem) +
         "\nusers:\n- name: u1\n  user:\n" + user_yaml;
}

struct FakeApiServer::Impl {
  std::mutex mu;
  std::condition_variable cv;
  uint64_t generation = 0;  // bumped on every change; WaitFor watches it
  bool stopping = false;
  uint64_t connection_epoch = 0;  // bumped by StopListening: hung requests give up
  int listen_fd = -1;
  std::thread accept_thread;
  std::set<int> open_fds;
  std::vector<std::thread> connections;
  SslCtxPtr ssl_ctx;

  std::map<std::string, Json> nodes;
  uint64_t next_rv = 1000;
  std::string token;
  std::deque<Fault> faults;
  std::function<void()> before_patch;
  std::vector<Record> log;

  void Changed() {
    ++generation;
    cv.notify_all();
  }

  // Applies a merge patch to a node under `mu`; returns status and response body.
  std::pair<int, std::string> Patch(const std::string& name, const std::string& body) {
    auto it = nodes.find(name);
    if (it == nodes.end()) {
      return {404, StatusBody(404, "NotFound", "nodes \"" + name + "\" not found")};
    }
    Json patch = Json::parse(body, nullptr, /*allow_exceptions=*/false);
    if (patch.is_discarded()) {
      return {400, StatusBody(400, "BadRequest", "invalid JSON")};
    }
    if (!patch.is_object()) {
      return {400, StatusBody(400, "BadRequest", "merge patch is not a JSON object")};
    }
    Json& node = it->second;
    const std::string current_rv = node["metadata"]["resourceVersion"].get<std::string>();
    // A resourceVersion in the patch is a precondition, as in kube-apiserver.
    if (patch.contains("metadata") && patch["metadata"].is_object() &&
        patch["metadata"].contains("resourceVersion")) {
      const Json& rv = patch["metadata"]["resourceVersion"];
      if (!rv.is_string() || rv.get<std::string>() != current_rv) {
        return {409, StatusBody(409, "Conflict",
                                "Operation cannot be fulfilled on nodes \"" + name +
                                    "\": the object has been modified; please apply your "
                                    "changes to the latest version and try again")};
      }
    }
    Json merged = node;
    merged.merge_patch(patch);  // RFC 7386
    if (!merged.contains("metadata") || !merged["metadata"].is_object()) {
      return {422, StatusBody(422, "Invalid", "metadata removed")};
    }
    Json& meta = merged["metadata"];
    for (const char* field : {"labels", "annotations"}) {
      if (!meta.contains(field)) continue;
      if (!meta[field].is_object()) {
        return {422,
                StatusBody(422, "Invalid", std::string("metadata.") + field + " is not an object")};
      }
      for (const auto& [k, v] : meta[field].items()) {
        if (!v.is_string()) {
          return {422, StatusBody(422, "Invalid",
                                  "metadata." + std::string(field) + "[" + k + "]: not a string")};
        }
        if (std::string(field) == "labels" &&
            (!IsValidLabelKey(k) || !IsValidLabelValue(v.get<std::string>()))) {
          return {422,
                  StatusBody(422, "Invalid",
                             "metadata.labels: invalid label " + k + "=" + v.get<std::string>())};
        }
      }
    }
    meta["resourceVersion"] = std::to_string(next_rv++);
    node = std::move(merged);
    Changed();
    return {200, DumpJson(node)};
  }
};

FakeApiServer::FakeApiServer() : FakeApiServer(Options{}) {}

FakeApiServer::FakeApiServer(Options options) : options_(std::move(options)), impl_(new Impl) {
  // OpenSSL writes with write(2): a client that hung up must not kill the test with SIGPIPE.
  std::signal(SIGPIPE, SIG_IGN);
  if (!options_.cert_file.empty()) {
    impl_->ssl_ctx = ServerContext(options_.cert_file, options_.key_file, options_.client_ca_file);
  }
  Listen();
}

bool FakeApiServer::HasIpv6Loopback() {
  int fd = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  sockaddr_in6 addr{};
  addr.sin6_family = AF_INET6;
  addr.sin6_addr = in6addr_loopback;
  bool ok = bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
  close(fd);
  return ok;
}

void FakeApiServer::SetCertificate(const fs::path& cert_file, const fs::path& key_file) {
  SslCtxPtr ctx = ServerContext(cert_file, key_file, options_.client_ca_file);
  std::lock_guard lock(impl_->mu);
  impl_->ssl_ctx = std::move(ctx);
  // Kept-alive connections were made with the old certificate: close them.
  for (int fd : impl_->open_fds) shutdown(fd, SHUT_RDWR);
}

FakeApiServer::~FakeApiServer() {
  StopListening();
  std::vector<std::thread> connections;
  {
    std::lock_guard lock(impl_->mu);
    impl_->stopping = true;
    impl_->Changed();
    connections.swap(impl_->connections);
  }
  for (std::thread& t : connections) t.join();
}

std::string FakeApiServer::url() const {
  return std::string(options_.cert_file.empty() ? "http" : "https") + "://" +
         (options_.ipv6 ? "[::1]" : "127.0.0.1") + ":" + std::to_string(port_);
}

std::string FakeApiServer::Kubeconfig(const std::filesystem::path& ca_cert,
                                      const std::string& token) const {
  std::string cluster = "{server: '" + url() + "'";
  if (!ca_cert.empty()) cluster += ", certificate-authority: '" + ca_cert.string() + "'";
  return "apiVersion: v1\nkind: Config\ncurrent-context: c\n"
         "clusters: [{name: k, cluster: " +
         cluster +
         "}}]\n"
         "users: [{name: u, user: {token: " +
         token +
         "}}]\n"
         "contexts: [{name: c, context: {cluster: k, user: u}}]\n";
}

void FakeApiServer::Listen() {
  int fd = socket(options_.ipv6 ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_storage storage{};
  socklen_t len;
  if (options_.ipv6) {
    auto* addr = reinterpret_cast<sockaddr_in6*>(&storage);
    addr->sin6_family = AF_INET6;
    addr->sin6_addr = in6addr_loopback;
    addr->sin6_port = htons(port_);  // 0 the first time: an ephemeral port
    len = sizeof *addr;
  } else {
    auto* addr = reinterpret_cast<sockaddr_in*>(&storage);
    addr->sin_family = AF_INET;
    addr->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr->sin_port = htons(port_);
    len = sizeof *addr;
  }
  auto* sa = reinterpret_cast<sockaddr*>(&storage);
  if (bind(fd, sa, len) != 0 || listen(fd, 64) != 0) std::abort();
  getsockname(fd, sa, &len);
  port_ = ntohs(options_.ipv6 ? reinterpret_cast<sockaddr_in6*>(&storage)->sin6_port
                              : reinterpret_cast<sockaddr_in*>(&storage)->sin_port);
  std::lock_guard lock(impl_->mu);
  impl_->listen_fd = fd;
  impl_->accept_thread = std::thread([this, fd] { AcceptLoop(fd); });
}

void FakeApiServer::StopListening() {
  std::thread accept_thread;
  {
    std::lock_guard lock(impl_->mu);
    if (impl_->listen_fd < 0) return;
    shutdown(impl_->listen_fd, SHUT_RDWR);
    for (int fd : impl_->open_fds) shutdown(fd, SHUT_RDWR);
    ++impl_->connection_epoch;
    impl_->Changed();
    accept_thread.swap(impl_->accept_thread);
  }
  accept_thread.join();
  std::lock_guard lock(impl_->mu);
  close(impl_->listen_fd);
  impl_->listen_fd = -1;
}

void FakeApiServer::StartListening() { Listen(); }

void FakeApiServer::AcceptLoop(int listen_fd) {
  while (true) {
    int fd = accept4(listen_fd, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      return;  // shut down
    }
    std::lock_guard lock(impl_->mu);
    impl_->open_fds.insert(fd);
    impl_->connections.emplace_back([this, fd] { ServeConnection(fd); });
  }
}

void FakeApiServer::ServeConnection(int fd) {
  Impl& s = *impl_;
  SslPtr ssl(nullptr, &SSL_free);
  bool client_cert_ok = false;
  SslCtxPtr ctx;
  {
    std::lock_guard lock(s.mu);
    ctx = s.ssl_ctx;
  }
  if (ctx) {
    ssl.reset(SSL_new(ctx.get()));
    SSL_set_fd(ssl.get(), fd);
    if (SSL_accept(ssl.get()) != 1) {
      ERR_clear_error();
      ssl.reset();
      std::lock_guard lock(s.mu);
      s.open_fds.erase(fd);
      close(fd);
      return;
    }
    X509* peer = SSL_get1_peer_certificate(ssl.get());
    client_cert_ok = peer != nullptr && SSL_get_verify_result(ssl.get()) == X509_V_OK;
    X509_free(peer);
  }
  ReadFn read = [&](char* buf, size_t n) -> long {
    if (ssl) return SSL_read(ssl.get(), buf, static_cast<int>(n));
    return recv(fd, buf, n, 0);
  };
  auto write_all = [&](const std::string& data) {
    for (size_t off = 0; off < data.size();) {
      long n = ssl ? SSL_write(ssl.get(), data.data() + off, static_cast<int>(data.size() - off))
                   : send(fd, data.data() + off, data.size() - off, MSG_NOSIGNAL);
      if (n <= 0) return;
      off += static_cast<size_t>(n);
    }
  };

  std::string pending;
  while (true) {
    auto request = ReadHttpRequest(read, pending);
    if (!request || !*request) break;
    const HttpRequest& req = **request;
    Record record{req.method, std::string(req.Path()),         req.Header("content-type"), req.body,
                  0,          std::chrono::steady_clock::now()};

    std::unique_lock lock(s.mu);
    std::optional<Fault> fault;
    for (auto it = s.faults.begin(); it != s.faults.end(); ++it) {
      if (it->method.empty() || it->method == req.method) {
        fault = *it;
        s.faults.erase(it);
        break;
      }
    }
    if (fault && (fault->kind == FaultKind::kClose || fault->kind == FaultKind::kHang)) {
      s.log.push_back(record);
      s.Changed();
      if (fault->kind == FaultKind::kHang) {
        uint64_t epoch = s.connection_epoch;
        s.cv.wait_for(lock, fault->delay,
                      [&] { return s.stopping || s.connection_epoch != epoch; });
      }
      break;  // no response: the client sees a reset or its own timeout
    }
    if (fault && fault->kind == FaultKind::kDelay) {
      uint64_t epoch = s.connection_epoch;
      s.cv.wait_for(lock, fault->delay, [&] { return s.stopping || s.connection_epoch != epoch; });
    }

    int status = 200;
    std::string body;
    std::string extra;
    const std::string prefix = "/api/v1/nodes/";
    const std::string auth = req.Header("authorization");
    if (fault && fault->kind == FaultKind::kStatus) {
      status = fault->status;
      body = StatusBody(status, std::string(HttpReason(status)), "injected fault");
      if (fault->retry_after > 0)
        extra = "Retry-After: " + std::to_string(fault->retry_after) + "\r\n";
    } else if (!s.token.empty() && auth != "Bearer " + s.token && !client_cert_ok) {
      status = 401;
      body = StatusBody(401, "Unauthorized", "Unauthorized");
    } else if (auto reply = resources_.Handle(req.method, req.target, req.body)) {
      status = reply->status;
      body = std::move(reply->body);
    } else if (auto nfd = nfd_.Handle(req.method, req.target, record.content_type, req.body)) {
      status = nfd->status;
      body = std::move(nfd->body);
    } else if (req.method == "POST" && record.path.starts_with("/api/v1/namespaces/") &&
               record.path.ends_with("/events")) {
      // Events are stored nowhere: tests read them from Requests().
      status = 201;
      body = req.body;
    } else if (req.method == "GET" && record.path == "/api/v1/nodes") {
      // One page holds every Node (no test has more than a page).
      Json list = {{"kind", "NodeList"},
                   {"apiVersion", "v1"},
                   {"metadata", Json::object()},
                   {"items", Json::array()}};
      for (const auto& [name, node] : s.nodes) list["items"].push_back(node);
      body = DumpJson(list);
    } else if (record.path.rfind(prefix, 0) != 0 || record.path.size() == prefix.size()) {
      status = 404;
      body = StatusBody(404, "NotFound", "the server could not find the requested resource");
    } else {
      const std::string name = record.path.substr(prefix.size());
      if (req.method == "GET") {
        auto it = s.nodes.find(name);
        if (it == s.nodes.end()) {
          status = 404;
          body = StatusBody(404, "NotFound", "nodes \"" + name + "\" not found");
        } else {
          body = DumpJson(it->second);
        }
      } else if (req.method == "PATCH") {
        if (record.content_type != "application/merge-patch+json") {
          status = 415;
          body = StatusBody(415, "UnsupportedMediaType",
                            "the body of the request was in an unknown format - accepted media "
                            "types include: application/json-patch+json, "
                            "application/merge-patch+json, "
                            "application/apply-patch+yaml, "
                            "application/strategic-merge-patch+json");
        } else {
          std::function<void()> hook = s.before_patch;
          if (hook) {
            lock.unlock();
            hook();
            lock.lock();
          }
          std::tie(status, body) = s.Patch(name, req.body);
        }
      } else {
        status = 405;
        body = StatusBody(405, "MethodNotAllowed", "method not allowed");
      }
    }
    record.status = status;
    s.log.push_back(record);
    s.Changed();
    lock.unlock();
    if (options_.chunked) {
      write_all("HTTP/1.1 " + std::to_string(status) + " " + std::string(HttpReason(status)) +
                "\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n" + extra +
                "\r\n" + Chunked(body));
    } else {
      write_all(FormatHttpResponse(status, "application/json", body, extra));
    }
  }
  if (ssl) SSL_shutdown(ssl.get());
  std::lock_guard lock(s.mu);
  s.open_fds.erase(fd);
  close(fd);
}

void FakeApiServer::AddNode(const std::string& name, const Labels& labels,
                            const std::map<std::string, std::string>& annotations) {
  Json meta = {{"name", name},
               {"uid", "6a1c0d8e-0000-4000-8000-" + std::to_string(name.size())},
               {"labels", Json(labels)},
               {"annotations", Json(annotations)}};
  std::lock_guard lock(impl_->mu);
  meta["resourceVersion"] = std::to_string(impl_->next_rv++);
  Json node = {{"kind", "Node"},
               {"apiVersion", "v1"},
               {"metadata", std::move(meta)},
               {"spec", Json::object()},
               {"status", Json::object()}};
  impl_->nodes[name] = node;
  impl_->Changed();
}

namespace {
std::map<std::string, std::string> StringMap(const Json& node, const char* field) {
  std::map<std::string, std::string> out;
  const Json& meta = node["metadata"];
  if (!meta.contains(field) || !meta[field].is_object()) return out;
  for (const auto& [k, v] : meta[field].items()) out[k] = v.get<std::string>();
  return out;
}
}  // namespace

Labels FakeApiServer::NodeLabels(const std::string& name) {
  std::lock_guard lock(impl_->mu);
  return StringMap(impl_->nodes.at(name), "labels");
}

std::map<std::string, std::string> FakeApiServer::NodeAnnotations(const std::string& name) {
  std::lock_guard lock(impl_->mu);
  return StringMap(impl_->nodes.at(name), "annotations");
}

std::string FakeApiServer::ResourceVersion(const std::string& name) {
  std::lock_guard lock(impl_->mu);
  return impl_->nodes.at(name)["metadata"]["resourceVersion"].get<std::string>();
}

int FakeApiServer::ForeignPatch(const std::string& name, const std::string& merge_patch) {
  std::lock_guard lock(impl_->mu);
  return impl_->Patch(name, merge_patch).first;
}

void FakeApiServer::SetToken(std::string token) {
  std::lock_guard lock(impl_->mu);
  impl_->token = std::move(token);
}

void FakeApiServer::InjectFault(Fault fault) {
  std::lock_guard lock(impl_->mu);
  impl_->faults.push_back(std::move(fault));
}

void FakeApiServer::SetBeforePatch(std::function<void()> hook) {
  std::lock_guard lock(impl_->mu);
  impl_->before_patch = std::move(hook);
}

std::vector<FakeApiServer::Record> FakeApiServer::Requests() {
  std::lock_guard lock(impl_->mu);
  return impl_->log;
}

size_t FakeApiServer::Count(const std::string& method, int status) {
  std::lock_guard lock(impl_->mu);
  size_t n = 0;
  for (const Record& r : impl_->log) {
    if (r.method == method && (status < 0 || r.status == status)) ++n;
  }
  return n;
}

bool FakeApiServer::WaitFor(const std::function<bool()>& pred, std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  std::unique_lock lock(impl_->mu);
  while (true) {
    uint64_t seen = impl_->generation;
    lock.unlock();
    if (pred()) return true;
    lock.lock();
    if (!impl_->cv.wait_until(lock, deadline, [&] { return impl_->generation != seen; })) {
      lock.unlock();
      return pred();
    }
  }
}

}  // namespace edgefd::testing
