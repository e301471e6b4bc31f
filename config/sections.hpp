#pragma once
// What the files of config/ share, and nothing outside config/ includes: the parser of each
// section (in the file named after it), the rules checked across a section once it is read,
// and the helpers more than one section uses.
#include <stdexcept>
#include <string>
#include <string_view>
#include <tuple>
#include <vector>

#include "config/config.hpp"
#include "config/reader.hpp"

namespace kassa::config::detail {

// One function per section; a new section is one more of these and one line in top_level()
// (config.cpp).
parse_fn server_section(server_config& c);             // server.cpp
parse_fn metrics_section(metrics_config& c);           // server.cpp
parse_fn log_section(log_config& c);                   // server.cpp
parse_fn store_section(store_config& c);               // store.cpp
parse_fn batching_section(batching_config& c);         // store.cpp
parse_fn hot_accounts_section(hot_accounts_config& c); // store.cpp
parse_fn payments_section(payments_config& c);         // payments.cpp
parse_fn access_section(access_config& c);             // access.cpp
parse_fn shadow_section(shadow_config& c);             // shadow.cpp

// Rules across a section, checked once the whole file is read (a list may name a key written
// further down).
void check_payments(const reader& r, payments_config& c, const std::string& source);
void check_access(const reader& r, const access_config& c);
void check_shadow(const reader& r, shadow_config& c, const config& all);

// Lists of the payments section that other sections read too (payments.cpp).
parse_fn provider_list(std::vector<provider_config>& out);
parse_fn client_ledgers(std::vector<uint32_t>& out);

// A rule between two keys is blamed on the one written later in the file; a key left at its
// default counts as written first.
inline bool later(const place& a, const place& b) {
  return std::tie(a.line, a.column) > std::tie(b.line, b.column);
}

// The place of a key that must be there (read_map checked it), for rules checked afterwards.
inline place must_find(const reader& r, const std::string& path) {
  place at = r.find(path);
  if (at.line == 0) throw std::logic_error("config: no place for " + path);
  return at;
}

inline std::string first_at(const place& first) {
  return "(first at " + first.path + ", line " + std::to_string(first.line) + ")";
}


// The name of `value` in `table`, "?" for a value the table does not list.
template <class E> std::string_view name_of(E value, const names<E>& table) {
  for (const auto& [name, e] : table) {
    if (e == value) return name;
  }
  return "?";
}

} // namespace kassa::config::detail
