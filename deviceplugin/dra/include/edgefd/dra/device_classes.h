#pragma once

#include <string>
#include <vector>

#include "edgefd/discovery/rules.h"

namespace edgefd::dra {

/// The DeviceClasses for a rule set, as a multi-document YAML (resource.k8s.io/v1): one
/// `edgefd.io-<rule>` per enabled rule that is a resource, selecting the driver's devices whose
/// `model` attribute is the rule's name, and `edgefd.io-big-cpu`, `-mid-cpu`, `-little-cpu`
/// selecting cores by `coreClass`. manifests/dra/deviceclasses.yaml is this output for the
/// built-in rules; `--print-device-classes --config site.yaml` gives a site's own.
std::string DeviceClassesYaml(const std::vector<Rule>& rules);

/// A kustomize strategic-merge patch (multi-document YAML of partial DeviceClasses) that adds
/// `spec.extendedResourceName: edgefd.io/<name>` to every class above, so a pod that asks for
/// `edgefd.io/edgetpu: 1` in its resources is served by DRA on clusters with the
/// DRAExtendedResource feature (alpha in 1.34).
std::string ExtendedResourcePatchYaml(const std::vector<Rule>& rules);

}  // namespace edgefd::dra
