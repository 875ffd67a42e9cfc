#include <openssl/evp.h>
#include <spdlog/spdlog.h>
#include <unistd.h>
#include <yaml-cpp/yaml.h>

#include <cstdlib>
#include <fstream>
#include <sstream>

#include "edgefd/kube/client.h"

namespace edgefd::kube {
namespace {

namespace fs = std::filesystem;

Result<std::string> DecodeBase64(const std::string& text, const std::string& where) {
  // OpenSSL's decoder skips line breaks and checks the padding.
  std::unique_ptr<EVP_ENCODE_CTX, decltype(&EVP_ENCODE_CTX_free)> ctx(EVP_ENCODE_CTX_new(),
                                                                      &EVP_ENCODE_CTX_free);
  std::string out(text.size() / 4 * 3 + 3, '\0');
  int n = 0, tail = 0;
  EVP_DecodeInit(ctx.get());
  auto* dst = reinterpret_cast<unsigned char*>(out.data());
  bool ok =
      EVP_DecodeUpdate(ctx.get(), dst, &n, reinterpret_cast<const unsigned char*>(text.data()),
                       static_cast<int>(text.size())) >= 0 &&
      EVP_DecodeFinal(ctx.get(), dst + n, &tail) == 1;
  if (!ok || text.empty()) return Error{where + ": not valid base64"};
  out.resize(static_cast<size_t>(n + tail));
  return out;
}

// The named entry ({name: X, <kind>: {...}}) of a kubeconfig list, or an undefined node.
YAML::Node FindNamed(const YAML::Node& list, const std::string& name, const std::string& kind) {
  if (!list || !list.IsSequence()) return YAML::Node(YAML::NodeType::Undefined);
  for (const YAML::Node& entry : list) {
    if (entry.IsMap() && entry["name"] && entry["name"].as<std::string>() == name) {
      return entry[kind];
    }
  }
  return YAML::Node(YAML::NodeType::Undefined);
}

std::string Scalar(const YAML::Node& map, const char* key) {
  if (!map || !map.IsMap() || !map[key] || !map[key].IsScalar()) return {};
  return map[key].as<std::string>();
}

// "<inline -data key>" or "<file key>": the PEM text, or "" when neither is set; `*file` is
// set to the file it came from (re-read when it changes).
Result<std::string> PemFrom(const YAML::Node& map, const char* data_key, const char* file_key,
                            const fs::path& base, const std::string& where, fs::path* file) {
  if (std::string data = Scalar(map, data_key); !data.empty()) {
    return DecodeBase64(data, where + data_key);
  }
  if (std::string name = Scalar(map, file_key); !name.empty()) {
    *file = fs::path(name).is_absolute() ? fs::path(name) : base / name;
    return ReadCredentialFile(*file, where + file_key);
  }
  return std::string();
}

}  // namespace

Result<std::string> ReadCredentialFile(const fs::path& path, const std::string& what) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Error{what + " " + path.string() + ": cannot be read"};
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string PodNamespace(const std::filesystem::path& sa_dir) {
  if (const char* ns = std::getenv("POD_NAMESPACE"); ns != nullptr && *ns != '\0') return ns;
  std::ifstream in(sa_dir / "namespace");
  std::string ns;
  if (in && std::getline(in, ns)) return ns;
  return "";
}

Result<KubeConfig> InClusterConfig(const fs::path& sa_dir) {
  const char* host = std::getenv("KUBERNETES_SERVICE_HOST");
  const char* port = std::getenv("KUBERNETES_SERVICE_PORT");
  if (host == nullptr || *host == '\0' || port == nullptr || *port == '\0') {
    return Error{
        "not running in a cluster: KUBERNETES_SERVICE_HOST and "
        "KUBERNETES_SERVICE_PORT are not set; use --kubeconfig FILE"};
  }
  KubeConfig config;
  std::string h = host;
  // An IPv6 service address ("fd00::1") goes in brackets in the URL.
  if (h.find(':') != std::string::npos && h.front() != '[') h = "[" + h + "]";
  config.server = "https://" + h + ":" + port;
  config.source = "in-cluster";
  config.token_file = sa_dir / "token";
  if (!fs::exists(config.token_file)) {
    return Error{"in-cluster: service account token " + config.token_file.string() +
                 " is missing (is automountServiceAccountToken off?)"};
  }
  config.ca_file = sa_dir / "ca.crt";  // re-read when the CA is rotated
  auto ca = ReadCredentialFile(config.ca_file, "in-cluster: CA bundle");
  if (!ca) return ca.error();
  config.ca_pem = std::move(*ca);
  return config;
}

Result<KubeConfig> LoadKubeconfig(const fs::path& file) {
  const std::string where = file.string() + ": ";
  YAML::Node root;
  try {
    root = YAML::LoadFile(file.string());
  } catch (const YAML::BadFile&) {
    return Error{where + "cannot be read"};
  } catch (const YAML::Exception& e) {
    return Error{where + "not valid YAML: " + e.what()};
  }
  if (!root.IsMap()) return Error{where + "not a kubeconfig (expected a YAML mapping)"};
  try {
    std::string context_name = Scalar(root, "current-context");
    YAML::Node context;
    if (context_name.empty()) {
      // A file with exactly one context needs no current-context.
      if (root["contexts"] && root["contexts"].IsSequence() && root["contexts"].size() == 1) {
        context = root["contexts"][0]["context"];
        context_name = Scalar(root["contexts"][0], "name");
      } else {
        return Error{where + "no current-context set"};
      }
    } else {
      context = FindNamed(root["contexts"], context_name, "context");
    }
    if (!context || !context.IsMap()) {
      return Error{where + "context '" + context_name + "' not found under contexts"};
    }
    std::string cluster_name = Scalar(context, "cluster");
    std::string user_name = Scalar(context, "user");
    YAML::Node cluster = FindNamed(root["clusters"], cluster_name, "cluster");
    if (!cluster || !cluster.IsMap()) {
      return Error{where + "cluster '" + cluster_name + "' (context '" + context_name +
                   "') not found under clusters"};
    }
    KubeConfig config;
    config.source = file.string();
    config.server = Scalar(cluster, "server");
    if (auto url = ParseApiServerUrl(config.server); !url) {
      return Error{where + "cluster '" + cluster_name + "': " + url.error().message};
    }
    const fs::path base = file.parent_path();
    auto ca = PemFrom(cluster, "certificate-authority-data", "certificate-authority", base,
                      where + "cluster '" + cluster_name + "' ", &config.ca_file);
    if (!ca) return ca.error();
    config.ca_pem = std::move(*ca);
    config.insecure_skip_tls_verify = Scalar(cluster, "insecure-skip-tls-verify") == "true";

    YAML::Node user = FindNamed(root["users"], user_name, "user");
    if (user_name.empty()) user = YAML::Node(YAML::NodeType::Map);
    if (!user || !user.IsMap()) {
      return Error{where + "user '" + user_name + "' (context '" + context_name +
                   "') not found under users"};
    }
    const std::string user_where = where + "user '" + user_name + "' ";
    if (user["exec"] || user["auth-provider"]) {
      return Error{user_where +
                   "uses an exec/auth-provider plugin, which edgefd does not run; "
                   "give a token, tokenFile or client certificate"};
    }
    config.token = Scalar(user, "token");
    if (std::string tf = Scalar(user, "tokenFile"); !tf.empty()) {
      config.token_file = fs::path(tf).is_absolute() ? fs::path(tf) : base / tf;
    }
    auto cert = PemFrom(user, "client-certificate-data", "client-certificate", base, user_where,
                        &config.client_cert_file);
    if (!cert) return cert.error();
    auto key =
        PemFrom(user, "client-key-data", "client-key", base, user_where, &config.client_key_file);
    if (!key) return key.error();
    config.client_cert_pem = std::move(*cert);
    config.client_key_pem = std::move(*key);
    if (config.client_cert_pem.empty() != config.client_key_pem.empty()) {
      return Error{user_where +
                   "has a client certificate without a key, or a key without a "
                   "certificate"};
    }
    return config;
  } catch (const YAML::Exception& e) {
    return Error{where + "malformed kubeconfig: " + e.what()};
  }
}

Result<std::unique_ptr<ApiTransport>> ConnectToApiServer(const ConnectOptions& options,
                                                         std::string* server) {
  auto config = options.kubeconfig.empty() ? InClusterConfig() : LoadKubeconfig(options.kubeconfig);
  if (!config) return config.error();
  if (options.insecure_skip_tls_verify) config->insecure_skip_tls_verify = true;
  config->allow_insecure_http = options.allow_insecure_http;
  if (config->insecure_skip_tls_verify) {
    spdlog::warn(
        "TLS verification of the API server {} is OFF: anyone on the path can impersonate it",
        config->server);
  }
  if (options.allow_insecure_http && config->server.rfind("http://", 0) == 0) {
    spdlog::warn("the API server {} is plain http:// (--allow-insecure-http): no token is sent",
                 config->server);
  }
  if (server != nullptr) *server = config->server + " (" + config->source + ")";
  return options.shared ? MakeSharedKubeClient(*config) : MakeKubeClient(*config);
}

std::string DefaultNodeName() {
  if (const char* env = std::getenv("NODE_NAME"); env != nullptr && *env != '\0') return env;
  char host[256] = {};
  if (gethostname(host, sizeof host - 1) == 0) return host;
  return {};
}

}  // namespace edgefd::kube
