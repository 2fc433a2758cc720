// cli_flags.h: one flag style for people, whichever they type. The command
// lines (diffrank-server, diffrank-index, diffrank) declare their long
// options with '_' or '-'; ParseFlags accepts either spelling of every long
// option ("--chunk-tokens 200" for "--chunk_tokens 200", "--on_error" for
// "--on-error"), and an unknown option gets the nearest known one as a
// suggestion ("did you mean --chunk_tokens?").
// Header-only (CLI11 is header-only too); used only by main() functions.
// Thread-safety: call from main before other threads start.
#ifndef DIFFRANK_COMMON_CLI_FLAGS_H_
#define DIFFRANK_COMMON_CLI_FLAGS_H_

#include <algorithm>
#include <iostream>
#include <map>
#include <string>
#include <vector>

#include "CLI/CLI.hpp"

namespace diffrank::cli {

// FlagKey: a long option name with '-' and '_' made the same.
inline std::string FlagKey(std::string name) {
  std::replace(name.begin(), name.end(), '-', '_');
  return name;
}

// EditDistance between two short strings (Levenshtein).
inline size_t EditDistance(const std::string& a, const std::string& b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diag = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      const size_t up = row[j];
      row[j] = std::min(
          {row[j] + 1, row[j - 1] + 1, diag + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diag = up;
    }
  }
  return row[b.size()];
}

// LongNames maps FlagKey(name) -> the declared name, for `app` and all its
// subcommands.
inline void LongNames(CLI::App& app, std::map<std::string, std::string>& out) {
  for (const CLI::Option* o : app.get_options()) {
    for (const std::string& n : o->get_lnames()) out.emplace(FlagKey(n), n);
  }
  for (CLI::App* sub : app.get_subcommands([](CLI::App*) { return true; })) {
    LongNames(*sub, out);
  }
}

// ParseFlags parses argv with `app` after rewriting each "--name" or
// "--name=value" to the declared spelling. Returns -1 when parsing
// succeeded, else the exit code (0 for --help, 2 for a usage error, with
// a suggestion for an unknown option).
inline int ParseFlags(CLI::App& app, int argc, char** argv) {
  std::map<std::string, std::string> names;
  LongNames(app, names);
  std::vector<std::string> args(argv, argv + argc);
  for (size_t i = 1; i < args.size(); ++i) {
    std::string& a = args[i];
    if (a == "--") break;
    if (a.size() < 3 || a.compare(0, 2, "--") != 0) continue;
    const size_t eq = a.find('=');
    const std::string name = a.substr(2, eq == std::string::npos ? eq : eq - 2);
    auto it = names.find(FlagKey(name));
    if (it != names.end() && it->second != name) {
      a = "--" + it->second + (eq == std::string::npos ? "" : a.substr(eq));
    }
  }
  std::vector<char*> ptrs;
  for (std::string& a : args) ptrs.push_back(a.data());
  try {
    app.parse(static_cast<int>(ptrs.size()), ptrs.data());
    return -1;
  } catch (const CLI::ParseError& e) {
    const int code = app.exit(e);
    if (code == 0) return 0;  // --help, --version
    for (size_t i = 1; i < args.size(); ++i) {
      const std::string& a = args[i];
      if (a.size() < 3 || a.compare(0, 2, "--") != 0) continue;
      const std::string key = FlagKey(a.substr(2, a.find('=') - 2));
      if (names.count(key)) continue;
      const std::string* best = nullptr;
      size_t best_d = 4;  // suggest only close names
      for (const auto& [k, declared] : names) {
        const size_t d = EditDistance(key, k);
        if (d < best_d) best_d = d, best = &declared;
      }
      if (best != nullptr) {
        std::cerr << "unknown option " << a.substr(0, a.find('='))
                  << ": did you mean --" << *best << "?\n";
      }
    }
    return 2;
  }
}

}  // namespace diffrank::cli

#endif  // DIFFRANK_COMMON_CLI_FLAGS_H_
