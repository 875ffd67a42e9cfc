#include "edgefd/common/cli.h"

#include <charconv>
#include <cmath>
#include <cstdlib>
#include <iostream>
#include <sstream>

namespace edgefd {
namespace {

constexpr size_t kHelpColumn = 30;
constexpr size_t kHelpWidth = 100;

// `text` cut at spaces into lines of at most `width` characters.
std::string Wrap(const std::string& text, size_t width) {
  std::string out, line;
  std::istringstream words(text);
  for (std::string word; words >> word;) {
    if (!line.empty() && line.size() + 1 + word.size() > width) {
      out += line + "\n";
      line.clear();
    }
    line += (line.empty() ? "" : " ") + word;
  }
  return out + line;
}

// --help: usage first, then what the program does, the flags by group, subcommands, footer;
// flag descriptions wrapped to the width of a terminal.
class HelpFormatter final : public CLI::Formatter {
 public:
  HelpFormatter() { column_width(kHelpColumn); }
  std::string make_option_desc(const CLI::Option* opt) const override {
    return Wrap(opt->get_description(), kHelpWidth - kHelpColumn);
  }
  std::string make_help(const CLI::App* app, std::string name,
                        CLI::AppFormatMode mode) const override {
    if (mode == CLI::AppFormatMode::Sub) return make_expanded(app);
    std::stringstream out;
    out << make_usage(app, name);
    if (!app->get_description().empty()) out << "\n" << make_description(app);
    out << make_positionals(app) << make_groups(app, mode) << make_subcommands(app, mode);
    if (!app->get_footer().empty()) out << "\n" << make_footer(app);
    return out.str();
  }
};

std::string Quote(const std::string& value) { return "'" + value + "'"; }

std::optional<long long> ParseInteger(const std::string& text) {
  long long v = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (text.empty() || ec != std::errc() || end != text.data() + text.size()) return std::nullopt;
  return v;
}

std::optional<double> ParseNumber(const std::string& text) {
  char* end = nullptr;
  double v = std::strtod(text.c_str(), &end);
  if (text.empty() || *end != '\0' || !std::isfinite(v)) return std::nullopt;
  return v;
}

std::string FormatNumber(double v) {
  std::ostringstream out;
  out << v;
  return out.str();
}

}  // namespace

void ConfigureApp(CLI::App& app, const std::string& footer) {
  app.formatter(std::make_shared<HelpFormatter>());
  app.set_version_flag("--version", app.get_name() + " " + std::string(Version()),
                       "show the version and exit");
  app.set_help_flag("-h,--help", "show this help and exit");
  // Like getopt: a flag given twice keeps its last value (repeatable flags are vectors).
  app.option_defaults()->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
  if (!footer.empty()) app.footer(footer);
}

std::optional<int> ParseCommandLine(CLI::App& app, int argc, char** argv) {
  try {
    app.parse(argc, argv);
    return std::nullopt;
  } catch (const CLI::CallForHelp&) {
    std::cout << app.help();
    return kExitOk;
  } catch (const CLI::CallForAllHelp&) {
    std::cout << app.help("", CLI::AppFormatMode::All);
    return kExitOk;
  } catch (const CLI::CallForVersion& e) {
    std::cout << e.what() << "\n";
    return kExitOk;
  } catch (const CLI::ParseError& e) {
    // "edgefd-pipeline run" when the error is in a command's flags.
    std::string command = app.get_name();
    for (const CLI::App* sub = &app; !sub->get_subcommands().empty();) {
      sub = sub->get_subcommands().front();
      command += " " + sub->get_name();
    }
    std::cerr << command << ": " << e.what() << "\nTry '" << command << " --help'.\n";
    return kExitUsage;
  }
}

CLI::Validator IntegerIn(long long min, long long max) {
  return CLI::Validator(
      [min, max](std::string& text) -> std::string {
        std::optional<long long> v = ParseInteger(text);
        if (v && *v >= min && *v <= max) return {};
        return Quote(text) + " is not an integer from " + std::to_string(min) + " to " +
               std::to_string(max);
      },
      "");
}

// A finite number from `min` to `max`; `what` names it in the message ("a number of seconds").
CLI::Validator NumberValidator(double min, double max, const std::string& what) {
  return CLI::Validator(
      [min, max, what](std::string& text) -> std::string {
        std::optional<double> v = ParseNumber(text);
        if (v && *v >= min && *v <= max) return {};
        return Quote(text) + " is not " + what + " from " + FormatNumber(min) + " to " +
               FormatNumber(max);
      },
      "");
}

CLI::Validator NumberIn(double min, double max) { return NumberValidator(min, max, "a number"); }

CLI::Validator SecondsIn(double min, double max) {
  return NumberValidator(min, max, "a number of seconds");
}

CLI::Validator OneOf(std::vector<std::string> words) {
  std::string list;
  for (const std::string& w : words) list += (list.empty() ? "" : ", ") + w;
  return CLI::Validator(
      [words, list](std::string& text) -> std::string {
        for (const std::string& w : words) {
          if (text == w) return {};
        }
        return Quote(text) + " is not one of " + list;
      },
      "");
}

void AddLogLevelFlag(CLI::App& app, std::string& level) {
  app.add_option("--log-level", level, "trace, debug, info, warn, error or off (default: info)")
      ->type_name("LEVEL")
      ->check(OneOf({"trace", "debug", "info", "warn", "error", "critical", "off"}))
      ->group("Logging");
}

CLI::Option* AddMetricsAddrFlag(CLI::App& app, std::string& address) {
  return app
      .add_option("--metrics-addr,--metrics-address", address,
                  "serve /healthz, /readyz and /metrics on HOST:PORT, [IPV6]:PORT or :PORT; "
                  "none (or an empty ADDR) turns it off")
      ->type_name("ADDR")
      ->group("Metrics");
}

void AddKubeConnectionFlags(CLI::App& app, KubeFlags& flags) {
  const std::string group = "Kubernetes";
  app.add_option("--kubeconfig", flags.kubeconfig,
                 "reach the API server with this kubeconfig's current context (default: the "
                 "in-cluster service account)")
      ->type_name("FILE")
      ->group(group);
  app.add_flag("--insecure-skip-tls-verify", flags.insecure_skip_tls_verify,
               "do not verify the API server's certificate (unsafe)")
      ->group(group);
  app.add_flag("--allow-insecure-http", flags.allow_insecure_http,
               "accept a kubeconfig whose server is http:// (unencrypted; no token is sent "
               "over it)")
      ->group(group);
}

void AddKubeFlags(CLI::App& app, KubeFlags& flags, const std::string& written) {
  const std::string group = "Kubernetes";
  AddKubeConnectionFlags(app, flags);
  app.add_option("--node-name", flags.node_name,
                 "the Node this runs on (default: $NODE_NAME, else the hostname)")
      ->type_name("NAME")
      ->group(group);
  app.add_option_function<long long>(
         "--resync", [&flags](long long seconds) { flags.resync = std::chrono::seconds(seconds); },
         "re-read " + written +
             " at least this often and repair what someone else changed "
             "(default: " +
             std::to_string(flags.resync.count()) + ")")
      ->type_name("SECONDS")
      ->check(IntegerIn(1, 86400))
      ->group(group);
}

}  // namespace edgefd
