#include "edgefd/testing/pki.h"

#include <cstdlib>
#include <string>
#include <vector>

#include "edgefd/testing/files.h"

namespace edgefd::testing {
namespace fs = std::filesystem;

namespace {

int Run(const std::string& command) { return std::system((command + " >/dev/null 2>&1").c_str()); }

std::string Q(const fs::path& p) {
  std::string out = "'";
  out.append(p.string()).append("'");
  return out;
}

}  // namespace

Result<TestPki> TestPki::Create(const fs::path& dir) {
  TestPki pki;
  pki.dir = dir;
  pki.ca_cert = dir / "ca.crt";
  pki.ca_key = dir / "ca.key";
  pki.server_cert = dir / "server.crt";
  pki.server_key = dir / "server.key";
  pki.client_cert = dir / "client.crt";
  pki.client_key = dir / "client.key";
  pki.other_ca_cert = dir / "other-ca.crt";
  pki.other_server_cert = dir / "other-server.crt";
  pki.other_server_key = dir / "other-server.key";
  pki.other_client_cert = dir / "other-client.crt";
  pki.other_client_key = dir / "other-client.key";
  const std::string ec = " -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes";
  WriteFile(dir / "server.ext",
            "subjectAltName=IP:127.0.0.1,IP:::1,DNS:localhost\nextendedKeyUsage=serverAuth\n");
  WriteFile(dir / "client.ext", "extendedKeyUsage=clientAuth\n");
  // A certificate for `subject` with `ext`, signed by the CA `ca` (its .crt and .key).
  auto issue = [&](const fs::path& key, const fs::path& cert, const std::string& subject,
                   const std::string& ext, const std::string& ca) -> std::vector<std::string> {
    const fs::path csr = cert.string() + ".csr";
    return {"openssl req" + ec + " -keyout " + Q(key) + " -out " + Q(csr) + " -subj " + subject,
            "openssl x509 -req -in " + Q(csr) + " -CA " + Q(dir / (ca + ".crt")) + " -CAkey " +
                Q(dir / (ca + ".key")) + " -CAcreateserial -days 2 -extfile " +
                Q(dir / (ext + ".ext")) + " -out " + Q(cert)};
  };
  std::vector<std::string> commands = {
      "openssl req -x509" + ec + " -keyout " + Q(pki.ca_key) + " -out " + Q(pki.ca_cert) +
          " -days 2 -subj /CN=edgefd-test-ca",
      "openssl req -x509" + ec + " -keyout " + Q(dir / "other-ca.key") + " -out " +
          Q(pki.other_ca_cert) + " -days 2 -subj /CN=edgefd-other-ca",
  };
  for (auto more :
       {issue(pki.server_key, pki.server_cert, "/CN=kube-apiserver", "server", "ca"),
        issue(pki.client_key, pki.client_cert, "/CN=system:serviceaccount:edgefd:edgefd-labeller",
              "client", "ca"),
        issue(pki.other_server_key, pki.other_server_cert, "/CN=kube-apiserver", "server",
              "other-ca"),
        issue(pki.other_client_key, pki.other_client_cert,
              "/CN=system:serviceaccount:edgefd:edgefd-labeller", "client", "other-ca")}) {
    commands.insert(commands.end(), more.begin(), more.end());
  }
  for (const std::string& c : commands) {
    if (Run(c) != 0) return Error{"test PKI: '" + c + "' failed"};
  }
  return pki;
}

}  // namespace edgefd::testing
