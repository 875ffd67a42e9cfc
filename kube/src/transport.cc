// The API server client over libcurl. Each client owns one easy handle inside a multi handle
// of its own: the multi's connection cache keeps the connection alive between requests, and
// curl_multi_poll waits on the socket and on curl_multi_wakeup together, so Cancel() ends a
// request in flight at once (SIGTERM) whatever it is waiting for (name lookup, connect, TLS,
// a slow body). libcurl bounds the whole request (CURLOPT_TIMEOUT_MS, which no byte arriving
// extends); our callbacks bound what the peer can make us store.
#include <curl/curl.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <charconv>
#include <mutex>
#include <vector>

#include "edgefd/common/program.h"
#include "edgefd/kube/paths.h"
#include "kube_internal.h"

namespace edgefd::kube {
namespace {

namespace fs = std::filesystem;

struct CurlEasyFree {
  void operator()(CURL* h) const { curl_easy_cleanup(h); }
};
struct CurlMultiFree {
  void operator()(CURLM* h) const { curl_multi_cleanup(h); }
};
struct CurlSlistFree {
  void operator()(curl_slist* l) const { curl_slist_free_all(l); }
};
using CurlEasy = std::unique_ptr<CURL, CurlEasyFree>;
using CurlMulti = std::unique_ptr<CURLM, CurlMultiFree>;
using CurlSlist = std::unique_ptr<curl_slist, CurlSlistFree>;

void GlobalInit() {
  // Not thread-safe in libcurl 7.88: once, before any handle.
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
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

// What one request collects, and why our callbacks stopped it (libcurl only says "write
// error").
struct Exchange {
  size_t max_body = 0;
  std::string body;
  size_t header_lines = 0;
  size_t header_bytes = 0;
  std::chrono::seconds retry_after{0};
  std::string aborted;
};

// Case-insensitive "name:" at the start of a header line; the value after it, trimmed.
bool HeaderValue(std::string_view line, std::string_view name, std::string_view* value) {
  if (line.size() <= name.size() || line[name.size()] != ':') return false;
  for (size_t i = 0; i < name.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(line[i])) != name[i]) return false;
  }
  std::string_view v = line.substr(name.size() + 1);
  while (!v.empty() && (v.front() == ' ' || v.front() == '\t')) v.remove_prefix(1);
  while (!v.empty() && std::isspace(static_cast<unsigned char>(v.back())) != 0) v.remove_suffix(1);
  *value = v;
  return true;
}

// Retry-After in seconds (the HTTP-date form is ignored, as client-go does), at most
// kMaxRetryAfter: one answer must not stop the agent for years.
std::chrono::seconds ParseRetryAfter(std::string_view v) {
  uint64_t seconds = 0;
  auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), seconds);
  if (ec == std::errc::result_out_of_range && p != v.data()) return kMaxRetryAfter;
  if (ec != std::errc() || p != v.data() + v.size()) return std::chrono::seconds(0);
  return std::min(std::chrono::seconds(static_cast<int64_t>(std::min<uint64_t>(seconds, 1u << 30))),
                  kMaxRetryAfter);
}

size_t OnHeader(char* data, size_t size, size_t count, void* user) {
  auto* x = static_cast<Exchange*>(user);
  const size_t n = size * count;
  x->header_bytes += n;
  if (++x->header_lines > kMaxHeaderCount) {
    x->aborted = "the response has more than " + std::to_string(kMaxHeaderCount) + " header lines";
    return 0;
  }
  if (x->header_bytes > kMaxHeaderBytes) {
    x->aborted =
        "the response's headers are larger than " + std::to_string(kMaxHeaderBytes >> 10) + " KiB";
    return 0;
  }
  const std::string_view line(data, n);
  if (line.substr(0, 5) == "HTTP/") {
    x->retry_after = std::chrono::seconds(0);  // an interim (1xx) response's do not count
  } else if (std::string_view v; HeaderValue(line, "retry-after", &v)) {
    x->retry_after = ParseRetryAfter(v);
  }
  return n;
}

size_t OnBody(char* data, size_t size, size_t count, void* user) {
  auto* x = static_cast<Exchange*>(user);
  const size_t n = size * count;
  if (n > x->max_body - std::min(x->max_body, x->body.size())) {
    x->aborted = "the response is larger than " + std::to_string(x->max_body) + " bytes";
    return 0;
  }
  x->body.append(data, n);
  return n;
}

class CurlTransport final : public ApiTransport {
 public:
  CurlTransport(KubeConfig config, ApiServerUrl url, CurlMulti multi, CurlEasy easy)
      : config_(std::move(config)),
        url_(std::move(url)),
        multi_(std::move(multi)),
        easy_(std::move(easy)) {
    stamps_ = Stamps();
    origin_ = std::string(url_.tls ? "https://" : "http://") + url_.host_header + url_.base_path;
  }

  void Cancel() override {
    cancelled_.store(true);
    curl_multi_wakeup(multi_.get());  // thread-safe: ends the wait in curl_multi_poll
  }

  Result<ApiResponse> Send(std::string_view method, const std::string& path,
                           const std::string& body, std::string_view content_type) override {
    auto failed = [&](const std::string& why, ErrorCode code) {
      return Error{config_.server + ": " + std::string(method) + " " + Escape(path).substr(0, 300) +
                       " failed: " + why,
                   code};
    };
    if (cancelled_.load()) return failed("cancelled (shutting down)", ErrorCode::kCancelled);
    if (Status s = CheckRequestPath(path); !s) {
      return failed(s.error().message, ErrorCode::kInvalidArgument);
    }
    ReloadCredentialsIfChanged();
    auto headers = Headers(body, content_type);
    if (!headers) return failed(headers.error().message, headers.error().code);
    Exchange x;
    x.max_body = config_.max_response_bytes;
    Configure(method, path, body, headers->get(), &x);
    char error[CURL_ERROR_SIZE] = "";
    curl_easy_setopt(easy_.get(), CURLOPT_ERRORBUFFER, error);
    CURLcode rc = Perform();
    curl_easy_setopt(easy_.get(), CURLOPT_ERRORBUFFER, nullptr);
    if (rc == CURLE_ABORTED_BY_CALLBACK && cancelled_.load()) {
      return failed("cancelled (shutting down)", ErrorCode::kCancelled);
    }
    if (rc != CURLE_OK) return failed(Describe(rc, error, x), CodeOf(rc, x));
    long status = 0;
    curl_easy_getinfo(easy_.get(), CURLINFO_RESPONSE_CODE, &status);
    ApiResponse out;
    out.status = static_cast<int>(status);
    out.body = std::move(x.body);
    out.retry_after = x.retry_after;
    return out;
  }

 private:
  // Runs the easy handle in the multi until it is done, cancelled or past its deadline
  // (libcurl's own CURLOPT_TIMEOUT_MS, checked by curl_multi_perform).
  CURLcode Perform() {
    CURL* easy = easy_.get();
    CURLM* multi = multi_.get();
    if (curl_multi_add_handle(multi, easy) != CURLM_OK) return CURLE_FAILED_INIT;
    CURLcode result = CURLE_ABORTED_BY_CALLBACK;
    for (;;) {
      if (cancelled_.load()) break;
      int running = 0;
      if (curl_multi_perform(multi, &running) != CURLM_OK) {
        result = CURLE_FAILED_INIT;
        break;
      }
      if (running == 0) {
        int left = 0;
        while (CURLMsg* msg = curl_multi_info_read(multi, &left)) {
          if (msg->msg == CURLMSG_DONE && msg->easy_handle == easy) result = msg->data.result;
        }
        break;
      }
      if (curl_multi_poll(multi, nullptr, 0, 1000, nullptr) != CURLM_OK) {
        result = CURLE_FAILED_INIT;
        break;
      }
    }
    curl_multi_remove_handle(multi, easy);
    return result;
  }

  static std::string Describe(CURLcode rc, const char* error, const Exchange& x) {
    if (!x.aborted.empty()) return x.aborted;
    const std::string detail = error[0] != '\0' ? error : curl_easy_strerror(rc);
    switch (rc) {
      case CURLE_OPERATION_TIMEDOUT:
        return "timed out (the whole request is bounded by the client's timeout): " + detail;
      case CURLE_PEER_FAILED_VERIFICATION:
      case CURLE_SSL_CACERT_BADFILE:
        return "TLS: the server's certificate is not trusted (" + detail +
               "); check the CA bundle (certificate-authority, ca.crt)";
      case CURLE_FILESIZE_EXCEEDED:
        return "the response is larger than " + std::to_string(x.max_body) + " bytes";
      default:
        return detail;
    }
  }

  // A failed exchange's kind: a limit the answer broke, the deadline, or a peer that could
  // not be reached or trusted now (retried: a server restarts, a CA is rotated).
  static ErrorCode CodeOf(CURLcode rc, const Exchange& x) {
    if (!x.aborted.empty() || rc == CURLE_FILESIZE_EXCEEDED) return ErrorCode::kResourceExhausted;
    if (rc == CURLE_OPERATION_TIMEDOUT) return ErrorCode::kDeadlineExceeded;
    return ErrorCode::kUnavailable;
  }

  Result<CurlSlist> Headers(const std::string& body, std::string_view content_type) {
    CurlSlist list;
    auto add = [&](const std::string& line) {
      list.reset(curl_slist_append(list.release(), line.c_str()));
    };
    add("Accept: application/json");
    // No "Expect: 100-continue" round trip for large bodies.
    add("Expect:");
    if (!body.empty()) add("Content-Type: " + std::string(content_type));
    // A token only ever goes over TLS: an http:// server (allowed by a flag) gets none.
    if (url_.tls) {
      auto token = Token();
      if (!token) return token.error();
      if (!token->empty()) add("Authorization: Bearer " + *token);
    }
    if (list == nullptr) return Error{"out of memory"};
    return list;
  }

  Result<std::string> Token() const {
    std::string token = config_.token;
    if (!config_.token_file.empty()) {
      // Re-read every time: the kubelet rotates projected service-account tokens.
      auto text = ReadCredentialFile(config_.token_file, config_.source + ": token file");
      if (!text) return Error{text.error().message, ErrorCode::kUnauthenticated};
      token = TrimToken(std::move(*text));
    }
    for (char c : token) {
      // A line break would end the header and let the file's content write the request.
      if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) {
        return Error{
            config_.source + ": the token holds a control character or line break" +
                (config_.token_file.empty() ? "" : " (" + config_.token_file.string() + ")"),
            ErrorCode::kUnauthenticated};
      }
    }
    return token;
  }

  void Configure(std::string_view method, const std::string& path, const std::string& body,
                 curl_slist* headers, Exchange* x) {
    CURL* e = easy_.get();
    // Reset keeps the live connection and the TLS session cache, and forgets the last
    // request's method and body.
    curl_easy_reset(e);
    const std::string url = origin_ + path;
    curl_easy_setopt(e, CURLOPT_URL, url.c_str());
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, url_.tls ? "https" : "http");
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    // A request cancelled while its name is still being resolved must not wait for
    // getaddrinfo (the resolver thread is left to finish on its own): SIGTERM ends the
    // program within a second, whatever DNS does.
    curl_easy_setopt(e, CURLOPT_QUICK_EXIT, 1L);
    curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(e, CURLOPT_HTTP_VERSION, static_cast<long>(CURL_HTTP_VERSION_2TLS));
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, static_cast<long>(config_.timeout.count()));
    curl_easy_setopt(e, CURLOPT_MAXFILESIZE_LARGE,
                     static_cast<curl_off_t>(config_.max_response_bytes));
    curl_easy_setopt(e, CURLOPT_USERAGENT, user_agent_.c_str());
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, &OnHeader);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, x);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, &OnBody);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, x);
    if (method == "GET") {
      curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
    } else if (method == "HEAD") {
      curl_easy_setopt(e, CURLOPT_NOBODY, 1L);
    } else {
      const std::string m(method);
      curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, m.c_str());  // copied by libcurl
      if (!body.empty() || method == "POST" || method == "PUT" || method == "PATCH") {
        curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(body.size()));
        curl_easy_setopt(e, CURLOPT_POSTFIELDS, body.data());
      }
    }
    if (url_.tls) ConfigureTls(e);
    if (fresh_connection_) {
      curl_easy_setopt(e, CURLOPT_FRESH_CONNECT, 1L);
      fresh_connection_ = false;
    }
  }

  void ConfigureTls(CURL* e) {
    curl_easy_setopt(e, CURLOPT_SSLVERSION, static_cast<long>(CURL_SSLVERSION_TLSv1_2));
    if (config_.insecure_skip_tls_verify) {
      curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 0L);
      curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 0L);
    }
    auto blob = [&](CURLoption option, const std::string& pem) {
      curl_blob b{const_cast<char*>(pem.data()), pem.size(), CURL_BLOB_COPY};
      curl_easy_setopt(e, option, &b);
    };
    if (!config_.ca_pem.empty()) {
      // Only the given CA is trusted, as client-go does: not the system's bundle too.
      blob(CURLOPT_CAINFO_BLOB, config_.ca_pem);
      curl_easy_setopt(e, CURLOPT_CAINFO, nullptr);
      curl_easy_setopt(e, CURLOPT_CAPATH, nullptr);
    }
    if (!config_.client_cert_pem.empty()) {
      blob(CURLOPT_SSLCERT_BLOB, config_.client_cert_pem);
      curl_easy_setopt(e, CURLOPT_SSLCERTTYPE, "PEM");
      blob(CURLOPT_SSLKEY_BLOB, config_.client_key_pem);
      curl_easy_setopt(e, CURLOPT_SSLKEYTYPE, "PEM");
    }
  }

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
    if (Status s = CheckPem(ca, cert, key, config_.source); !s) {
      spdlog::warn("{} (changed on disk); keeping the previous credentials", s.error().message);
      return;
    }
    config_.ca_pem = std::move(ca);
    config_.client_cert_pem = std::move(cert);
    config_.client_key_pem = std::move(key);
    fresh_connection_ = true;  // the next request shakes hands with the new credentials
    spdlog::info("{}: the CA bundle or client certificate changed on disk; reloaded",
                 config_.source);
  }

  KubeConfig config_;
  ApiServerUrl url_;
  std::string origin_;
  const std::string user_agent_ = "edgefd/" + std::string(Version());
  std::vector<FileStamp> stamps_;
  bool fresh_connection_ = false;
  std::atomic<bool> cancelled_{false};
  CurlMulti multi_;  // before easy_: the easy handle is cleaned up first
  CurlEasy easy_;
};

}  // namespace

Result<std::unique_ptr<ApiTransport>> MakeKubeClient(const KubeConfig& config) {
  const std::string where = config.source.empty() ? config.server : config.source;
  auto url = ParseApiServerUrl(config.server);
  if (!url) return Error{where + ": " + url.error().message};
  if (!url->tls && !config.allow_insecure_http) {
    return Error{where + ": server '" + config.server +
                 "' is plain http://: requests and credentials would cross the network "
                 "unencrypted; use https://, or --allow-insecure-http (no token is sent then)"};
  }
  if (!config.client_cert_pem.empty() && config.client_key_pem.empty()) {
    return Error{where + ": client key is not a PEM private key"};
  }
  if (Status s = CheckPem(config.ca_pem, config.client_cert_pem, config.client_key_pem, where);
      !s) {
    return s.error();
  }
  GlobalInit();
  CurlMulti multi(curl_multi_init());
  CurlEasy easy(curl_easy_init());
  if (multi == nullptr || easy == nullptr) return Error{where + ": cannot create a libcurl handle"};
  return std::unique_ptr<ApiTransport>(
      std::make_unique<CurlTransport>(config, std::move(*url), std::move(multi), std::move(easy)));
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
                         " failed: cancelled (shutting down)",
                     ErrorCode::kCancelled};
      }
      if (!idle_.empty()) {
        client = std::move(idle_.back());
        idle_.pop_back();
      }
    }
    if (client == nullptr) {
      auto made = MakeKubeClient(config_);  // checked once already: fails only on a rotated file
      // A file rotated into something unreadable: the next rotation may mend it.
      if (!made) return Error{made.error().message, ErrorCode::kUnavailable};
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

}  // namespace edgefd::kube
