#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>

#include "edgefd/common/result.h"

namespace edgefd::kube {

/// How to reach and authenticate to the Kubernetes API server.
struct KubeConfig {
  std::string server;                ///< "https://10.96.0.1:443", "https://[fd00::1]:6443"
  std::string ca_pem;                ///< CA bundle that signs the server's certificate
  std::string token;                 ///< bearer token, when given inline
  std::filesystem::path token_file;  ///< re-read on every request (rotated tokens)
  std::string client_cert_pem;       ///< client certificate (kubeconfig users)
  std::string client_key_pem;
  /// Where the PEM fields above came from, when from files: re-read whenever a file changes
  /// (a rotated CA bundle or client certificate; projected volumes swap a symlink).
  std::filesystem::path ca_file;
  std::filesystem::path client_cert_file;
  std::filesystem::path client_key_file;
  bool insecure_skip_tls_verify = false;
  /// An `http://` server is refused unless this is set (--allow-insecure-http); even then no
  /// bearer token is sent over it.
  bool allow_insecure_http = false;
  /// Per request, connecting included: a whole-request deadline that bytes arriving cannot
  /// extend.
  std::chrono::milliseconds timeout{10000};
  /// Responses larger than this are refused (counted as they arrive, before they grow).
  size_t max_response_bytes = 8 << 20;
  std::string source;  ///< "in-cluster" or the kubeconfig path, for messages
};

/// An API server URL taken apart: `https://[fd00::1]:6443/prefix` has host "fd00::1".
struct ApiServerUrl {
  bool tls = true;
  std::string host;  ///< a DNS name or an IP address, without brackets
  bool ip_literal = false;
  uint16_t port = 443;
  std::string base_path;    ///< "" or "/prefix" (no trailing slash), before every request path
  std::string host_header;  ///< "host:port", "[fd00::1]:6443"
};

/// Parses `http(s)://HOST[:PORT][/PATH]`, HOST a name, an IPv4 address or a bracketed IPv6
/// address. Errors quote the URL.
Result<ApiServerUrl> ParseApiServerUrl(std::string_view url);

/// The whole of a credential file (token, CA bundle, certificate, key); an Error
/// "<what> <path>: cannot be read".
Result<std::string> ReadCredentialFile(const std::filesystem::path& path, const std::string& what);

/// The service account directory mounted into every pod.
inline constexpr char kServiceAccountDir[] = "/var/run/secrets/kubernetes.io/serviceaccount";

/// The namespace this pod runs in: $POD_NAMESPACE (a DaemonSet sets it from
/// metadata.namespace), else `<sa_dir>/namespace`; "" when neither says.
std::string PodNamespace(const std::filesystem::path& sa_dir = kServiceAccountDir);

/// In-cluster config: `KUBERNETES_SERVICE_HOST`/`KUBERNETES_SERVICE_PORT`, the token file
/// `<sa_dir>/token` (re-read per request) and the CA bundle `<sa_dir>/ca.crt`.
Result<KubeConfig> InClusterConfig(const std::filesystem::path& sa_dir = kServiceAccountDir);

/// Reads a kubeconfig file's current context: cluster `server`,
/// `certificate-authority(-data)`, `insecure-skip-tls-verify`; user `token`, `tokenFile`,
/// `client-certificate(-data)`/`client-key(-data)`. Relative file paths are relative to the
/// kubeconfig's directory. Errors name the file and the key.
Result<KubeConfig> LoadKubeconfig(const std::filesystem::path& file);

/// A response from the API server, whatever its status.
struct ApiResponse {
  int status = 0;
  std::string body;
  /// From a Retry-After header (seconds), at most kMaxRetryAfter; 0 when absent.
  std::chrono::seconds retry_after{0};
};

/// The longest wait a Retry-After header can ask for: a larger value is cut to this.
inline constexpr std::chrono::seconds kMaxRetryAfter{60};
/// At most this many response header lines, and this many header bytes in all.
inline constexpr size_t kMaxHeaderCount = 128;
inline constexpr size_t kMaxHeaderBytes = 64 << 10;

/// Sends requests to the API server. An Error means no HTTP response was received
/// (connection refused, timeout, TLS failure, unreadable token file, cancelled).
class ApiTransport {
 public:
  virtual ~ApiTransport() = default;
  /// `path` is absolute ("/api/v1/nodes/n1", segments escaped: see paths.h); a path with a
  /// control byte, a space, a non-ASCII byte, '#' or a "." or ".." segment is refused before
  /// anything is sent. `content_type` is used when `body` is not empty. One request at a time
  /// per client made by MakeKubeClient (the agent's thread); any number for a shared one.
  virtual Result<ApiResponse> Send(std::string_view method, const std::string& path,
                                   const std::string& body, std::string_view content_type) = 0;
  /// Makes a Send in flight, and every later one, fail at once (shutdown); any thread.
  virtual void Cancel() {}
};

/// A client over libcurl: one easy handle and its kept-alive connection, IPv4 or IPv6
/// (literal addresses included), HTTP/2 when the server offers it over TLS, HTTPS_PROXY /
/// NO_PROXY from the environment, never a redirect followed. Checks the PEM material up front
/// so a bad CA or key is reported here, naming `config.source`, rather than as a TLS failure
/// on the first request. Before each request it re-reads the token file and, when they
/// changed on disk, the CA and client certificate files. The whole request (resolving,
/// connecting, TLS, response) is bounded by `config.timeout`; a response larger than
/// `config.max_response_bytes`, or with more than kMaxHeaderCount header lines or
/// kMaxHeaderBytes of them, is refused. An `http://` server is refused unless
/// `config.allow_insecure_http`, and gets no token.
Result<std::unique_ptr<ApiTransport>> MakeKubeClient(const KubeConfig& config);

/// The same client for several threads at once (the DRA plugin's publisher and its gRPC
/// handlers): each concurrent request gets a connection of its own (a MakeKubeClient client),
/// idle ones are kept for reuse (at most 4), and Cancel ends every request in flight and
/// fails every later one.
Result<std::unique_ptr<ApiTransport>> MakeSharedKubeClient(const KubeConfig& config);

/// How a daemon reaches the API server, from its Kubernetes flags.
struct ConnectOptions {
  std::filesystem::path kubeconfig;       ///< its current context; empty: in-cluster
  bool insecure_skip_tls_verify = false;  ///< turns verification off (with a warning)
  bool allow_insecure_http = false;       ///< accept an http:// server (no token is sent)
  bool shared = false;                    ///< a MakeSharedKubeClient client
};

/// The client of a daemon (the labeller agent, the DRA plugin). `server`, when given,
/// receives "<url> (<kubeconfig or in-cluster>)" for the log. Errors name the config.
Result<std::unique_ptr<ApiTransport>> ConnectToApiServer(const ConnectOptions& options,
                                                         std::string* server = nullptr);

/// The node a daemon runs on when --node-name is not given: $NODE_NAME (the DaemonSets set it
/// from spec.nodeName), else the hostname; "" when neither is known.
std::string DefaultNodeName();

}  // namespace edgefd::kube
