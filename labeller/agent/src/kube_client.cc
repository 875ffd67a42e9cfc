// The API server client: HTTP/1.1 over TLS with OpenSSL on one kept-alive connection. Every
// wait (resolving, connecting, the handshake, each read and write) polls the socket together
// with a cancel eventfd against the request's deadline, so a request never outlives its
// timeout and Cancel() ends it at once (SIGTERM).
#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <spdlog/spdlog.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <charconv>
#include <condition_variable>
#include <cstring>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "edgefd/agent/kube.h"
#include "edgefd/common/http_wire.h"
#include "edgefd/common/program.h"
#include "edgefd/common/unique_fd.h"

namespace edgefd {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

constexpr size_t kMaxResponseBytes = 16 << 20;

using BioPtr = std::unique_ptr<BIO, decltype(&BIO_free)>;
using X509Ptr = std::unique_ptr<X509, decltype(&X509_free)>;
using KeyPtr = std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)>;
using SslCtxPtr = std::shared_ptr<SSL_CTX>;
using SslPtr = std::unique_ptr<SSL, decltype(&SSL_free)>;
using AddrInfoPtr = std::unique_ptr<addrinfo, decltype(&freeaddrinfo)>;

BioPtr MemBio(const std::string& pem) {
  return BioPtr(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())), &BIO_free);
}

// The PEM certificates in `pem`, in order (none when it holds none or is malformed).
std::vector<X509Ptr> Certificates(const std::string& pem) {
  BioPtr bio = MemBio(pem);
  std::vector<X509Ptr> out;
  while (X509* cert = PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr)) {
    out.emplace_back(cert, &X509_free);
  }
  ERR_clear_error();
  return out;
}

KeyPtr PrivateKey(const std::string& pem) {
  BioPtr bio = MemBio(pem);
  KeyPtr key(PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr), &EVP_PKEY_free);
  ERR_clear_error();
  return key;
}

// The TLS client context for these PEM texts: only `ca_pem` is trusted when given (as
// client-go does), else the system's bundle.
Result<SslCtxPtr> MakeSslContext(const std::string& ca_pem, const std::string& cert_pem,
                                 const std::string& key_pem, bool insecure,
                                 const std::string& where) {
  SslCtxPtr ctx(SSL_CTX_new(TLS_client_method()), &SSL_CTX_free);
  if (!ctx) return Error{where + ": cannot create a TLS context"};
  SSL_CTX_set_min_proto_version(ctx.get(), TLS1_2_VERSION);
  if (!ca_pem.empty()) {
    std::vector<X509Ptr> cas = Certificates(ca_pem);
    if (cas.empty()) return Error{where + ": certificate authority is not a PEM certificate"};
    X509_STORE* store = SSL_CTX_get_cert_store(ctx.get());
    for (const X509Ptr& ca : cas) X509_STORE_add_cert(store, ca.get());
  } else if (!insecure) {
    SSL_CTX_set_default_verify_paths(ctx.get());
  }
  SSL_CTX_set_verify(ctx.get(), insecure ? SSL_VERIFY_NONE : SSL_VERIFY_PEER, nullptr);
  if (!cert_pem.empty()) {
    std::vector<X509Ptr> chain = Certificates(cert_pem);
    if (chain.empty()) return Error{where + ": client certificate is not a PEM certificate"};
    KeyPtr key = PrivateKey(key_pem);
    if (!key) return Error{where + ": client key is not a PEM private key"};
    bool ok = SSL_CTX_use_certificate(ctx.get(), chain[0].get()) == 1 &&
              SSL_CTX_use_PrivateKey(ctx.get(), key.get()) == 1;
    for (size_t i = 1; ok && i < chain.size(); ++i) {
      ok = SSL_CTX_add1_chain_cert(ctx.get(), chain[i].get()) == 1;
    }
    ok = ok && SSL_CTX_check_private_key(ctx.get()) == 1;
    ERR_clear_error();
    if (!ok) return Error{where + ": client key does not match the client certificate"};
  }
  return ctx;
}

std::string TrimToken(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' ')) s.pop_back();
  return s;
}

// What identifies a file's content cheaply: stat() follows symlinks, so the symlink swap of a
// projected volume (..data -> ..2024_01_01...) shows as another inode.
struct FileStamp {
  bool exists = false;
  dev_t dev = 0;
  ino_t ino = 0;
  off_t size = 0;
  int64_t mtime_ns = 0;
  bool operator==(const FileStamp&) const = default;
};

FileStamp StampOf(const fs::path& path) {
  struct stat st {};
  if (path.empty() || ::stat(path.c_str(), &st) != 0) return {};
  return {true, st.st_dev, st.st_ino, st.st_size,
          int64_t(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec};
}

int64_t MsLeft(Clock::time_point deadline) {
  return std::max<int64_t>(
      0, std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count());
}

// Waits for `events` on `fd`, or the cancel fd, or the deadline. An Error names which.
Status WaitFor(int fd, short events, int cancel_fd, Clock::time_point deadline,
               std::chrono::milliseconds timeout) {
  for (;;) {
    pollfd fds[2] = {{fd, events, 0}, {cancel_fd, POLLIN, 0}};
    int n = ::poll(fds, 2, static_cast<int>(MsLeft(deadline)));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Error{std::string("poll: ") + std::strerror(errno)};
    if (fds[1].revents != 0) return Error{"cancelled (shutting down)"};
    if (n == 0) return Error{"timed out after " + std::to_string(timeout.count()) + " ms"};
    return Ok{};
  }
}

// A host name resolved on a thread of its own, so the wait respects the deadline and Cancel
// (getaddrinfo itself cannot be interrupted). The thread owns the shared state it writes.
Result<AddrInfoPtr> Resolve(const ApiServerUrl& url, int cancel_fd, Clock::time_point deadline,
                            std::chrono::milliseconds timeout) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  const std::string port = std::to_string(url.port);
  if (url.ip_literal) {
    hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV;
    addrinfo* res = nullptr;
    int rc = getaddrinfo(url.host.c_str(), port.c_str(), &hints, &res);
    if (rc != 0) return Error{"address " + url.host + ": " + gai_strerror(rc)};
    return AddrInfoPtr(res, &freeaddrinfo);
  }
  struct Lookup {
    UniqueFd done{::eventfd(0, EFD_CLOEXEC)};
    int rc = 0;
    addrinfo* res = nullptr;
    ~Lookup() {
      if (res != nullptr) freeaddrinfo(res);
    }
  };
  auto lookup = std::make_shared<Lookup>();
  if (!lookup->done.valid()) return Error{std::string("eventfd: ") + std::strerror(errno)};
  std::thread([lookup, host = url.host, port, hints] {
    lookup->rc = getaddrinfo(host.c_str(), port.c_str(), &hints, &lookup->res);
    uint64_t one = 1;
    ssize_t n = ::write(lookup->done.get(), &one, sizeof one);
    (void)n;  // an eventfd write of 1 cannot fail short of overflow
  }).detach();
  if (Status s = WaitFor(lookup->done.get(), POLLIN, cancel_fd, deadline, timeout); !s) {
    return Error{"resolving " + url.host + ": " + s.error().message};
  }
  if (lookup->rc != 0) return Error{"resolving " + url.host + ": " + gai_strerror(lookup->rc)};
  return AddrInfoPtr(std::exchange(lookup->res, nullptr), &freeaddrinfo);
}

// One TCP (and TLS) connection to the API server.
class Connection {
 public:
  Connection(UniqueFd fd, SslPtr ssl) : fd_(std::move(fd)), ssl_(std::move(ssl)) {}
  int fd() const { return fd_.get(); }
  SSL* ssl() const { return ssl_.get(); }
  /// An idle kept-alive connection the server has not closed (nothing to read on it).
  bool Idle() const {
    pollfd p{fd_.get(), POLLIN, 0};
    return ::poll(&p, 1, 0) == 0;
  }
  ~Connection() {
    if (ssl_) SSL_shutdown(ssl_.get());  // best effort close_notify; never waits
  }

 private:
  UniqueFd fd_;
  SslPtr ssl_;
};

class HttpsTransport final : public ApiTransport {
 public:
  HttpsTransport(KubeConfig config, ApiServerUrl url, SslCtxPtr ctx)
      : config_(std::move(config)),
        url_(std::move(url)),
        ctx_(std::move(ctx)),
        cancel_(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) {
    stamps_ = Stamps();
  }

  void Cancel() override {
    cancelled_.store(true);
    uint64_t one = 1;
    ssize_t n = ::write(cancel_.get(), &one, sizeof one);
    (void)n;  // the counter never reaches its limit: one write per Cancel
  }

  Result<ApiResponse> Send(std::string_view method, const std::string& path,
                           const std::string& body, std::string_view content_type) override {
    auto failed = [&](const std::string& why) {
      return Error{config_.server + ": " + std::string(method) + " " + path + " failed: " + why};
    };
    if (cancelled_.load()) return failed("cancelled (shutting down)");
    ReloadCredentialsIfChanged();
    auto request = FormatRequest(method, path, body, content_type);
    if (!request) return request.error();
    const Clock::time_point deadline = Clock::now() + config_.timeout;
    // A kept-alive connection the server closed meanwhile fails before any response byte;
    // the request is then sent once more on a new connection (as HTTP clients do: nothing
    // reached the server's handler).
    for (int attempt = 0;; ++attempt) {
      const bool reused = conn_ != nullptr && conn_->Idle();
      if (!reused) {
        conn_.reset();
        auto conn = Connect(deadline);
        if (!conn) return failed(conn.error().message);
        conn_ = std::move(*conn);
      }
      std::string pending;
      bool received = false;
      Status wrote = Write(*request, deadline);
      Result<HttpResponse> response = Error{""};
      if (wrote) {
        std::string read_error;
        response = ReadHttpResponse(
            [&](char* buf, size_t n) {
              long got = Read(buf, n, deadline, &read_error);
              received |= got > 0;
              return got;
            },
            pending, kMaxResponseBytes, method == "HEAD");
        if (!response && !read_error.empty()) response = Error{read_error};
      }
      if (!wrote || !response) {
        conn_.reset();
        if (reused && !received && attempt == 0 && !cancelled_.load()) continue;
        return failed(!wrote ? wrote.error().message : response.error().message);
      }
      if (!response->reusable || !pending.empty()) conn_.reset();
      ApiResponse out;
      out.status = response->status;
      out.body = std::move(response->body);
      const std::string retry_after = response->Header("retry-after");
      long seconds = 0;
      auto [p, ec] =
          std::from_chars(retry_after.data(), retry_after.data() + retry_after.size(), seconds);
      if (ec == std::errc() && seconds > 0) out.retry_after = std::chrono::seconds(seconds);
      return out;
    }
  }

 private:
  std::vector<FileStamp> Stamps() const {
    return {StampOf(config_.ca_file), StampOf(config_.client_cert_file),
            StampOf(config_.client_key_file)};
  }

  // The CA bundle and client certificate, re-read when one of their files changed: a rotated
  // CA must not leave the agent failing until it restarts. A half-written or bad set is
  // reported once and the previous one kept.
  void ReloadCredentialsIfChanged() {
    if (config_.ca_file.empty() && config_.client_cert_file.empty() &&
        config_.client_key_file.empty()) {
      return;
    }
    std::vector<FileStamp> now = Stamps();
    if (now == stamps_) return;
    stamps_ = now;
    std::string ca = config_.ca_pem, cert = config_.client_cert_pem, key = config_.client_key_pem;
    for (auto [file, pem, what] :
         {std::tuple{&config_.ca_file, &ca, "CA bundle"},
          std::tuple{&config_.client_cert_file, &cert, "client certificate"},
          std::tuple{&config_.client_key_file, &key, "client key"}}) {
      if (file->empty()) continue;
      auto text = ReadCredentialFile(*file, config_.source + ": " + what);
      if (!text) {
        spdlog::warn("{}; keeping the previous credentials", text.error().message);
        return;
      }
      *pem = std::move(*text);
    }
    auto ctx = MakeSslContext(ca, cert, key, config_.insecure_skip_tls_verify, config_.source);
    if (!ctx) {
      spdlog::warn("{} (changed on disk); keeping the previous credentials", ctx.error().message);
      return;
    }
    config_.ca_pem = std::move(ca);
    config_.client_cert_pem = std::move(cert);
    config_.client_key_pem = std::move(key);
    ctx_ = std::move(*ctx);
    conn_.reset();  // the next request shakes hands with the new credentials
    spdlog::info("{}: the CA bundle or client certificate changed on disk; reloaded",
                 config_.source);
  }

  Result<std::string> FormatRequest(std::string_view method, const std::string& path,
                                    const std::string& body, std::string_view content_type) {
    std::string token = config_.token;
    if (!config_.token_file.empty()) {
      // Re-read every time: the kubelet rotates projected service-account tokens.
      auto text = ReadCredentialFile(config_.token_file, config_.source + ": token file");
      if (!text) return Error{text.error().message};
      token = TrimToken(std::move(*text));
    }
    for (char c : token) {
      // A line break would end the header and let the file's content write the request.
      if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) {
        return Error{config_.source + ": the token holds a control character or line break" +
                     (config_.token_file.empty() ? "" : " (" + config_.token_file.string() + ")")};
      }
    }
    std::string out;
    out.reserve(256 + body.size());
    out.append(method).append(" ").append(url_.base_path).append(path).append(" HTTP/1.1\r\n");
    out.append("Host: ").append(url_.host_header).append("\r\n");
    out.append("User-Agent: edgefd-labeller/").append(Version()).append("\r\n");
    out.append("Accept: application/json\r\n");
    if (!token.empty()) out.append("Authorization: Bearer ").append(token).append("\r\n");
    if (!body.empty()) out.append("Content-Type: ").append(content_type).append("\r\n");
    if (!body.empty() || method == "PATCH" || method == "POST" || method == "PUT") {
      out.append("Content-Length: ").append(std::to_string(body.size())).append("\r\n");
    }
    out.append("\r\n").append(body);
    return out;
  }

  Status Wait(int fd, int events, Clock::time_point deadline) {
    return WaitFor(fd, static_cast<short>(events), cancel_.get(), deadline, config_.timeout);
  }

  // Connects to the first address that answers, then shakes hands.
  Result<std::unique_ptr<Connection>> Connect(Clock::time_point deadline) {
    auto addresses = Resolve(url_, cancel_.get(), deadline, config_.timeout);
    if (!addresses) return addresses.error();
    std::string last_error = "no address for " + url_.host;
    for (addrinfo* a = addresses->get(); a != nullptr; a = a->ai_next) {
      UniqueFd fd(
          ::socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, a->ai_protocol));
      if (!fd.valid()) {
        last_error = std::string("socket: ") + std::strerror(errno);
        continue;
      }
      int one = 1;
      setsockopt(fd.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
      if (::connect(fd.get(), a->ai_addr, a->ai_addrlen) != 0 && errno != EINPROGRESS) {
        last_error = "connect to " + url_.host_header + ": " + std::strerror(errno);
        continue;
      }
      if (Status s = Wait(fd.get(), POLLOUT, deadline); !s) {
        return Error{"connect to " + url_.host_header + ": " + s.error().message};
      }
      int err = 0;
      socklen_t len = sizeof err;
      getsockopt(fd.get(), SOL_SOCKET, SO_ERROR, &err, &len);
      if (err != 0) {
        last_error = "connect to " + url_.host_header + ": " + std::strerror(err);
        continue;
      }
      if (!url_.tls) {
        return std::make_unique<Connection>(std::move(fd), SslPtr(nullptr, &SSL_free));
      }
      return Handshake(std::move(fd), deadline);
    }
    return Error{last_error};
  }

  Result<std::unique_ptr<Connection>> Handshake(UniqueFd fd, Clock::time_point deadline) {
    SslPtr ssl(SSL_new(ctx_.get()), &SSL_free);
    if (!ssl) return Error{"cannot create a TLS session"};
    SSL_set_fd(ssl.get(), fd.get());
    if (url_.ip_literal) {
      // An IP address is checked against the certificate's IP SANs, and sent as no SNI.
      X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl.get()), url_.host.c_str());
    } else {
      SSL_set1_host(ssl.get(), url_.host.c_str());
      SSL_set_tlsext_host_name(ssl.get(), url_.host.c_str());
    }
    for (;;) {
      ERR_clear_error();
      int rc = SSL_connect(ssl.get());
      if (rc == 1) break;
      int err = SSL_get_error(ssl.get(), rc);
      if (err != SSL_ERROR_WANT_READ && err != SSL_ERROR_WANT_WRITE) {
        return Error{TlsFailure(ssl.get(), err)};
      }
      if (Status s = Wait(fd.get(), err == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT, deadline); !s) {
        return Error{"TLS handshake: " + s.error().message};
      }
    }
    return std::make_unique<Connection>(std::move(fd), std::move(ssl));
  }

  static std::string TlsFailure(SSL* ssl, int err) {
    long verify = SSL_get_verify_result(ssl);
    if (verify != X509_V_OK) {
      return std::string("TLS: the server's certificate is not trusted (") +
             X509_verify_cert_error_string(verify) +
             "); check the CA bundle (certificate-authority, ca.crt)";
    }
    unsigned long e = ERR_get_error();
    char buf[256] = "";
    if (e != 0) ERR_error_string_n(e, buf, sizeof buf);
    ERR_clear_error();
    if (err == SSL_ERROR_SYSCALL || err == SSL_ERROR_ZERO_RETURN) {
      return "TLS handshake: the connection was closed";
    }
    return std::string("TLS handshake failed: ") + (buf[0] != '\0' ? buf : "unknown error");
  }

  Status Write(const std::string& data, Clock::time_point deadline) {
    for (size_t off = 0; off < data.size();) {
      long n;
      int wait = 0;
      if (conn_->ssl() != nullptr) {
        ERR_clear_error();
        n = SSL_write(conn_->ssl(), data.data() + off, static_cast<int>(data.size() - off));
        if (n <= 0) {
          int err = SSL_get_error(conn_->ssl(), static_cast<int>(n));
          if (err == SSL_ERROR_WANT_READ) wait = POLLIN;
          if (err == SSL_ERROR_WANT_WRITE) wait = POLLOUT;
          if (wait == 0) return Error{"sending the request: the connection failed"};
        }
      } else {
        n = ::send(conn_->fd(), data.data() + off, data.size() - off, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && errno != EAGAIN) {
          return Error{std::string("sending the request: ") + std::strerror(errno)};
        }
        if (n < 0) wait = POLLOUT;
      }
      if (wait != 0) {
        if (Status s = Wait(conn_->fd(), wait, deadline); !s) {
          return Error{"sending the request: " + s.error().message};
        }
        continue;
      }
      off += static_cast<size_t>(n);
    }
    return Ok{};
  }

  // ReadFn for the response: > 0 bytes, 0 at the end of the stream, -1 with `error` set.
  long Read(char* buf, size_t count, Clock::time_point deadline, std::string* error) {
    for (;;) {
      int wait = 0;
      if (conn_->ssl() != nullptr) {
        ERR_clear_error();
        int n = SSL_read(conn_->ssl(), buf, static_cast<int>(std::min<size_t>(count, 1 << 30)));
        if (n > 0) return n;
        int err = SSL_get_error(conn_->ssl(), n);
        if (err == SSL_ERROR_ZERO_RETURN) return 0;
        if (err == SSL_ERROR_WANT_READ) wait = POLLIN;
        if (err == SSL_ERROR_WANT_WRITE) wait = POLLOUT;
        if (wait == 0) {
          // A peer that closes without close_notify: the end of the stream all the same
          // (a truncated body is caught by its length).
          if (err == SSL_ERROR_SYSCALL && ERR_peek_error() == 0) return 0;
          *error = "reading the response: the TLS connection failed";
          return -1;
        }
      } else {
        ssize_t n = ::recv(conn_->fd(), buf, count, 0);
        if (n >= 0) return n;
        if (errno == EINTR) continue;
        if (errno != EAGAIN) {
          *error = std::string("reading the response: ") + std::strerror(errno);
          return -1;
        }
        wait = POLLIN;
      }
      if (Status s = Wait(conn_->fd(), wait, deadline); !s) {
        *error = "waiting for the response: " + s.error().message;
        return -1;
      }
    }
  }

  KubeConfig config_;
  ApiServerUrl url_;
  SslCtxPtr ctx_;
  std::vector<FileStamp> stamps_;
  UniqueFd cancel_;
  std::atomic<bool> cancelled_{false};
  std::unique_ptr<Connection> conn_;
};

}  // namespace

Result<ApiServerUrl> ParseApiServerUrl(std::string_view url) {
  const std::string quoted = "server '" + std::string(url) + "'";
  ApiServerUrl out;
  std::string_view rest = url;
  if (rest.substr(0, 8) == "https://") {
    rest.remove_prefix(8);
  } else if (rest.substr(0, 7) == "http://") {
    rest.remove_prefix(7);
    out.tls = false;
    out.port = 80;
  } else {
    return Error{quoted + " is not an http(s) URL"};
  }
  size_t slash = rest.find('/');
  std::string_view authority = rest.substr(0, slash);
  std::string_view path = slash == std::string_view::npos ? "" : rest.substr(slash);
  if (path.find_first_of("?#") != std::string_view::npos) {
    return Error{quoted + ": a query or fragment is not allowed"};
  }
  while (!path.empty() && path.back() == '/') path.remove_suffix(1);
  out.base_path = path;
  if (authority.find('@') != std::string_view::npos) {
    return Error{quoted + ": user information in the URL is not supported"};
  }
  std::string_view port;
  if (!authority.empty() && authority.front() == '[') {
    size_t close = authority.find(']');
    if (close == std::string_view::npos) return Error{quoted + ": unclosed '[' in the host"};
    out.host = authority.substr(1, close - 1);
    in6_addr addr{};
    if (inet_pton(AF_INET6, out.host.c_str(), &addr) != 1) {
      return Error{quoted + ": '" + out.host + "' is not an IPv6 address"};
    }
    out.ip_literal = true;
    std::string_view after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') return Error{quoted + ": expected ':PORT' after ']'"};
      port = after.substr(1);
    }
  } else {
    size_t colon = authority.rfind(':');
    out.host = authority.substr(0, colon);
    if (colon != std::string_view::npos) port = authority.substr(colon + 1);
    if (out.host.find(':') != std::string::npos) {
      return Error{quoted + ": an IPv6 address must be in brackets ([fd00::1]:6443)"};
    }
    in_addr addr{};
    out.ip_literal = inet_pton(AF_INET, out.host.c_str(), &addr) == 1;
  }
  if (out.host.empty()) return Error{quoted + ": no host"};
  for (char c : out.host) {
    if (static_cast<unsigned char>(c) <= 0x20 || c == 0x7f) {
      return Error{quoted + ": the host holds a space or control character"};
    }
  }
  if (!port.empty()) {
    unsigned value = 0;
    auto [p, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
    if (ec != std::errc() || p != port.data() + port.size() || value == 0 || value > 65535) {
      return Error{quoted + ": bad port '" + std::string(port) + "'"};
    }
    out.port = static_cast<uint16_t>(value);
  }
  const bool v6 = out.host.find(':') != std::string::npos;
  out.host_header = (v6 ? "[" + out.host + "]" : out.host) + ":" + std::to_string(out.port);
  return out;
}

Result<std::unique_ptr<ApiTransport>> MakeKubeClient(const KubeConfig& config) {
  const std::string where = config.source.empty() ? config.server : config.source;
  auto url = ParseApiServerUrl(config.server);
  if (!url) return Error{where + ": " + url.error().message};
  if (!config.client_cert_pem.empty() && config.client_key_pem.empty()) {
    return Error{where + ": client key is not a PEM private key"};
  }
  auto ctx = MakeSslContext(config.ca_pem, config.client_cert_pem, config.client_key_pem,
                            config.insecure_skip_tls_verify, where);
  if (!ctx) return ctx.error();
  return std::unique_ptr<ApiTransport>(
      std::make_unique<HttpsTransport>(config, std::move(*url), std::move(*ctx)));
}

namespace {

// A MakeKubeClient client per concurrent request, kept for reuse.
class SharedTransport final : public ApiTransport {
 public:
  SharedTransport(KubeConfig config, std::unique_ptr<ApiTransport> first)
      : config_(std::move(config)) {
    idle_.push_back(std::move(first));
  }

  Result<ApiResponse> Send(std::string_view method, const std::string& path,
                           const std::string& body, std::string_view content_type) override {
    std::unique_ptr<ApiTransport> client;
    {
      std::lock_guard lock(mu_);
      if (cancelled_) {
        return Error{config_.server + ": " + std::string(method) + " " + path +
                     " failed: cancelled (shutting down)"};
      }
      if (!idle_.empty()) {
        client = std::move(idle_.back());
        idle_.pop_back();
      }
    }
    if (client == nullptr) {
      auto made = MakeKubeClient(config_);  // checked once already: fails only on a rotated file
      if (!made) return made.error();
      client = std::move(*made);
    }
    ApiTransport* raw = client.get();
    {
      std::lock_guard lock(mu_);
      busy_.push_back(raw);
      if (cancelled_) raw->Cancel();  // Cancel came between the two locks
    }
    auto response = client->Send(method, path, body, content_type);
    std::lock_guard lock(mu_);
    std::erase(busy_, raw);
    if (!cancelled_ && idle_.size() < kMaxIdle) idle_.push_back(std::move(client));
    return response;
  }

  void Cancel() override {
    std::lock_guard lock(mu_);
    cancelled_ = true;
    for (ApiTransport* client : busy_) client->Cancel();
    idle_.clear();
  }

 private:
  static constexpr size_t kMaxIdle = 4;
  const KubeConfig config_;
  std::mutex mu_;
  bool cancelled_ = false;
  std::vector<std::unique_ptr<ApiTransport>> idle_;
  std::vector<ApiTransport*> busy_;
};

}  // namespace

Result<std::unique_ptr<ApiTransport>> MakeSharedKubeClient(const KubeConfig& config) {
  // The first client checks the configuration up front, as MakeKubeClient does.
  auto first = MakeKubeClient(config);
  if (!first) return first.error();
  return std::unique_ptr<ApiTransport>(
      std::make_unique<SharedTransport>(config, std::move(*first)));
}

}  // namespace edgefd
