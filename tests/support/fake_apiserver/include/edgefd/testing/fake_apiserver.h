#pragma once

// A stand-in for kube-apiserver at the wire level: HTTP/1.1 over TLS (or plain TCP) on
// 127.0.0.1 with an ephemeral port, the Node API's GET and PATCH with real RFC 7386 merge-patch
// semantics, resourceVersion preconditions, bearer-token and client-certificate
// authentication, and injectable faults. Tests and benches wait on its state with WaitFor.
#include <chrono>
#include <condition_variable>
#include <deque>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "edgefd/common/result.h"
#include "edgefd/discovery/inventory.h"
#include "edgefd/discovery/watch.h"
#include "edgefd/testing/fake_nfd_api.h"
#include "edgefd/testing/fake_resource_api.h"
#include "edgefd/testing/files.h"
#include "edgefd/testing/manual_change_source.h"
#include "edgefd/testing/pki.h"

namespace edgefd::testing {

/// `bytes` in base64 (a kubeconfig's *-data fields).
std::string Base64(std::string_view bytes);

/// A kubeconfig with one context for `server`, trusting the CA in `ca_pem` (inline), whose
/// user entry is `user_yaml` (lines indented by four spaces, e.g. "    tokenFile: token\n").
std::string KubeconfigYaml(const std::string& server, const std::string& ca_pem,
                           const std::string& user_yaml);

class FakeApiServer {
 public:
  struct Options {
    std::filesystem::path cert_file;  ///< empty: plain HTTP
    std::filesystem::path key_file;
    std::filesystem::path client_ca_file;  ///< accept client certificates signed by it
    bool ipv6 = false;                     ///< listen on [::1] instead of 127.0.0.1
    bool chunked = false;  ///< send bodies chunked, as kube-apiserver does with large ones
  };

  /// Whether this machine can listen on the IPv6 loopback address (tests skip otherwise).
  static bool HasIpv6Loopback();

  enum class FaultKind {
    kClose,   ///< read the request, close the connection without a response
    kHang,    ///< read the request, answer nothing until `delay` passes, then close
    kDelay,   ///< wait `delay`, then answer normally (a slow server)
    kStatus,  ///< answer `status` with a Status object (and Retry-After when set)
  };
  struct Fault {
    FaultKind kind = FaultKind::kStatus;
    int status = 500;
    std::chrono::milliseconds delay{0};
    std::string method;   ///< only requests with this method; empty: any
    int retry_after = 0;  ///< seconds; 0: no header
  };

  /// What the server saw of one request.
  struct Record {
    std::string method;
    std::string path;
    std::string content_type;
    std::string body;
    int status = 0;  ///< 0 when no response was sent (fault)
    std::chrono::steady_clock::time_point at;
  };

  FakeApiServer();  ///< plain HTTP on 127.0.0.1
  explicit FakeApiServer(Options options);
  ~FakeApiServer();
  FakeApiServer(const FakeApiServer&) = delete;
  FakeApiServer& operator=(const FakeApiServer&) = delete;

  uint16_t port() const { return port_; }
  std::string url() const;
  /// A kubeconfig that reaches this server with `token`, trusting `ca_cert` (a PEM file; empty
  /// for a plain-HTTP server): what a program under test is given with --kubeconfig.
  std::string Kubeconfig(const std::filesystem::path& ca_cert, const std::string& token) const;

  /// Creates (or replaces) a Node.
  void AddNode(const std::string& name, const Labels& labels,
               const std::map<std::string, std::string>& annotations = {});
  Labels NodeLabels(const std::string& name);
  std::map<std::string, std::string> NodeAnnotations(const std::string& name);
  std::string ResourceVersion(const std::string& name);

  /// Another writer's merge patch, applied as the server applies network patches; returns
  /// the HTTP status it would have answered.
  int ForeignPatch(const std::string& name, const std::string& merge_patch);

  /// Only requests with "Authorization: Bearer <token>" (or a verified client certificate)
  /// are served; empty disables the check.
  void SetToken(std::string token);
  /// Faults are consumed in order by the next matching requests.
  void InjectFault(Fault fault);
  /// Runs before each network PATCH is applied (outside the server lock): a concurrent
  /// writer's window between the client's GET and its PATCH.
  void SetBeforePatch(std::function<void()> hook);

  /// Presents this certificate on new connections from now on and closes the open ones
  /// (a CA rotation on the server's side).
  void SetCertificate(const std::filesystem::path& cert_file,
                      const std::filesystem::path& key_file);

  /// Closes the listening socket and every open connection: new connections are refused.
  void StopListening();
  /// Listens again on the same port.
  void StartListening();

  /// The resource.k8s.io API (ResourceSlices, ResourceClaims) this server also answers.
  FakeResourceApi& resources() { return resources_; }
  /// The nfd.k8s-sigs.io API (NodeFeature objects), as with NFD's CRDs installed.
  FakeNfdApi& nfd() { return nfd_; }

  std::vector<Record> Requests();
  size_t Count(const std::string& method, int status = -1);

  /// Waits until `pred` holds, re-evaluating it (without the server lock, so it may call the
  /// accessors above) after every request and state change; false on timeout.
  bool WaitFor(const std::function<bool()>& pred,
               std::chrono::milliseconds timeout = std::chrono::seconds(20));

 private:
  struct Impl;
  void Listen();
  void AcceptLoop(int listen_fd);
  void ServeConnection(int fd);

  Options options_;
  FakeResourceApi resources_;
  FakeNfdApi nfd_;
  std::unique_ptr<Impl> impl_;
  uint16_t port_ = 0;
};

}  // namespace edgefd::testing
