#pragma once

// What the kube library's files share and its users need not see.
#include <string>

#include "edgefd/common/result.h"
#include "edgefd/kube/client.h"

namespace edgefd::kube {

/// Whether these PEM texts are a CA bundle, a certificate chain and its key: an Error
/// "<where>: certificate authority is not a PEM certificate" (client certificate, client key,
/// "does not match") otherwise. Empty texts are not checked.
Status CheckPem(const std::string& ca_pem, const std::string& cert_pem, const std::string& key_pem,
                const std::string& where);

}  // namespace edgefd::kube
