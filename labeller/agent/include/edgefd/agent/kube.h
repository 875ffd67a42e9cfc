#pragma once

#include <chrono>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>

#include "edgefd/common/result.h"

namespace edgefd {

/// How to reach and authenticate to the Kubernetes API server.
struct KubeConfig {
  std::string server;                ///< "https://10.96.0.1:443"
  std::string ca_pem;                ///< CA bundle that signs the server's certificate
  std::string token;                 ///< bearer token, when given inline
  std::filesystem::path token_file;  ///< re-read on every request (rotated tokens)
  std::string client_cert_pem;       ///< client certificate (kubeconfig users)
  std::string client_key_pem;
  bool insecure_skip_tls_verify = false;
  std::chrono::milliseconds timeout{10000};  ///< per request
  std::string source;                        ///< "in-cluster" or the kubeconfig path, for messages
};

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
/// (connection refused, timeout, TLS failure, unreadable token file).
class ApiTransport {
 public:
  virtual ~ApiTransport() = default;
  /// `path` is absolute ("/api/v1/nodes/n1"); `content_type` is used when `body` is not empty.
  virtual Result<ApiResponse> Send(std::string_view method, const std::string& path,
                                   const std::string& body, std::string_view content_type) = 0;
};

/// The cpprestsdk transport. Checks the PEM material up front so a bad CA or key is reported
/// here, naming `config.source`, rather than as a TLS failure on the first request.
Result<std::unique_ptr<ApiTransport>> MakeKubeClient(const KubeConfig& config);

/// The client of a daemon (the labeller agent, the DRA plugin), from its Kubernetes flags: the
/// current context of `kubeconfig`, or the in-cluster service account when it is empty;
/// `insecure_skip_tls_verify` turns verification off (with a warning in the log). When the
/// config brings its own CA, OpenSSL's default bundle is pointed nowhere, which saves parsing
/// ~140 certificates per connection and about 1 MiB of resident memory. `server`, when given,
/// receives "<url> (<kubeconfig or in-cluster>)" for the log. Errors name the config.
Result<std::unique_ptr<ApiTransport>> ConnectToApiServer(const std::filesystem::path& kubeconfig,
                                                         bool insecure_skip_tls_verify,
                                                         std::string* server = nullptr);

/// The node a daemon runs on when --node-name is not given: $NODE_NAME (the DaemonSets set it
/// from spec.nodeName), else the hostname; "" when neither is known.
std::string DefaultNodeName();

/// Limits cpprestsdk's shared thread pool (40 threads by default) to `threads`; call once,
/// before the first client is made.
void LimitHttpThreads(size_t threads);

}  // namespace edgefd
