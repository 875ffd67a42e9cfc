#pragma once

// What every "show me" command prints with: the labeller's --dry-run, the device plugin's
// --list, the DRA driver's --print-slices take one --output flag, text, json or yaml.

#include <string>
#include <string_view>

#include "edgefd/common/cli.h"
#include "edgefd/common/json.h"

namespace edgefd {

/// --output FORMAT, one of text, json, yaml (default: `format` as it is, normally text).
/// `what` names the printing flags in the help text.
CLI::Option* AddOutputFlag(CLI::App& app, std::string& format, const std::string& what);

/// `value` as block-style YAML: the same data as DumpJson, keys and strings plain where YAML
/// reads them back as the same string, double-quoted (JSON escapes, which YAML shares)
/// otherwise; ends with a newline.
std::string DumpYaml(const Json& value);

/// A printed document in an --output format: "json" (indented) or "yaml" (DumpYaml); ends
/// with a newline.
std::string DumpDocument(const Json& value, std::string_view format);

}  // namespace edgefd
