#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>

#include "edgefd/common/result.h"

namespace edgefd {

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
  std::chrono::milliseconds timeout{10000};  ///< per request, connecting included
  std::string source;                        ///< "in-cluster" or the kubeconfig path, for messages
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
  std::chrono::seconds retry_after{0};  ///< from a Retry-After header, 0 when absent
};

/// Sends requests to the API server. An Error means no HTTP response was received
/// (connection refused, timeout, TLS failure, unreadable token file, cancelled).
class ApiTransport {
 public:
  virtual ~ApiTransport() = default;
  /// `path` is absolute ("/api/v1/nodes/n1"); `content_type` is used when `body` is not empty.
  /// One request at a time (the agent's thread).
  virtual Result<ApiResponse> Send(std::string_view method, const std::string& path,
                                   const std::string& body, std::string_view content_type) = 0;
  /// Makes a Send in flight, and every later one, fail at once (shutdown); any thread.
  virtual void Cancel() {}
};

/// HTTP/1.1 over TLS (OpenSSL) on one kept-alive connection, IPv4 or IPv6. Checks the PEM
/// material up front so a bad CA or key is reported here, naming `config.source`, rather than
/// as a TLS failure on the first request. Before each request it re-reads the token file and,
/// when they changed on disk, the CA and client certificate files; the whole request
/// (resolving, connecting, TLS, response) is bounded by `config.timeout`, and a response larger
/// than 16 MiB is refused.
Result<std::unique_ptr<ApiTransport>> MakeKubeClient(const KubeConfig& config);

/// The same client for several threads at once (the DRA plugin's publisher and its gRPC
/// handlers): each concurrent request gets a connection of its own (a MakeKubeClient client),
/// idle ones are kept for reuse (at most 4), and Cancel ends every request in flight and
/// fails every later one.
Result<std::unique_ptr<ApiTransport>> MakeSharedKubeClient(const KubeConfig& config);

/// The client of a daemon (the labeller agent, the DRA plugin), from its Kubernetes flags: the
/// current context of `kubeconfig`, or the in-cluster service account when it is empty;
/// `insecure_skip_tls_verify` turns verification off (with a warning in the log). `shared`:
/// a MakeSharedKubeClient client rather than a one-thread one. `server`, when given, receives
/// "<url> (<kubeconfig or in-cluster>)" for the log. Errors name the config.
Result<std::unique_ptr<ApiTransport>> ConnectToApiServer(const std::filesystem::path& kubeconfig,
                                                         bool insecure_skip_tls_verify,
                                                         std::string* server = nullptr,
                                                         bool shared = false);

/// The node a daemon runs on when --node-name is not given: $NODE_NAME (the DaemonSets set it
/// from spec.nodeName), else the hostname; "" when neither is known.
std::string DefaultNodeName();

}  // namespace edgefd
