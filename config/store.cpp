// The sections of how the ledger is kept: store, batching, hot_accounts.
#include <algorithm>
#include <cctype>

#include "config/sections.hpp"
#include "primitives/reserved_ids.hpp"

namespace kassa::config {
namespace {

using namespace detail;

const names<durability> durability_names = {
    {"fsync", durability::fsync},
    {"none", durability::none},
};

// An account id: decimal or 0x-hex, plain or quoted (a 128-bit id does not fit YAML's
// integers everywhere). Ids kassa reserves are refused here, so kassad never starts with a
// rule it could not apply.
parse_fn account_id(u128& out) {
  return [&out](reader& r, const YAML::Node& value, const place& at) {
    const std::string text = read_scalar(r, value, at, "an id (decimal or 0x-hex)");
    const bool hex = text.size() > 2 && text[0] == '0' && (text[1] == 'x' || text[1] == 'X');
    const bool digits =
        !text.empty() && std::all_of(text.begin() + (hex ? 2 : 0), text.end(), [&](char ch) {
          return hex ? std::isxdigit(static_cast<unsigned char>(ch)) != 0 : ch >= '0' && ch <= '9';
        });
    if (!digits) r.fail(at, "expected an id (decimal or 0x-hex), got '" + text + "'");
    if (!hex && text.size() > 1 && text[0] == '0') {
      r.fail(at, "expected an id without leading zeros (YAML 1.1 reads them as octal), got '" +
                     text + "'");
    }
    u128 id = 0;
    if (!parse_u128(text, id)) r.fail(at, "does not fit in 128 bits, got '" + text + "'");
    if (id == 0 || id == u128_max) {
      r.fail(at, "must not be " + std::string(id == 0 ? "0" : "2^128 - 1") +
                     "; ids 0 and 2^128 - 1 are reserved");
    }
    if (id_reserved(id)) {
      r.fail(at, "'" + text + "' lies in the ids kassa reserves for its own accounts (the high "
                              "64 bits 0xffffffffffffff00 and above); choose another id");
    }
    out = id;
  };
}

parse_fn hot_static_list(std::vector<hot_account_static>& out) {
  return [&out](reader& r, const YAML::Node& value, const place& at) {
    std::vector<std::pair<u128, place>> seen;
    read_list(r, value, at, "a list of {id, sub_accounts} maps",
              [&](reader& r, const YAML::Node& item, const place& here) {
                hot_account_static rule;
                read_map(r, item, here,
                         {
                             {"id", required, account_id(rule.id)},
                             {"sub_accounts", optional, integer(rule.sub_accounts, 2, 256)},
                         });
                const place id_at = r.find(here.path + ".id");
                for (const auto& [id, first] : seen) {
                  if (id == rule.id) {
                    r.fail(id_at, "duplicate id (first at " + first.path + ", line " +
                                      std::to_string(first.line) + ")");
                  }
                }
                seen.emplace_back(rule.id, id_at);
                out.push_back(rule);
              });
  };
}

parse_fn hot_adaptive_section(hot_accounts_adaptive& c) {
  return section({
      {"enabled", optional, boolean(c.enabled)},
      {"window_ms", optional, integer(c.window_ms, 1, 600000)},
      {"credits_min", optional, integer(c.credits_min, 1, 1000000000)},
      {"sub_accounts", optional, integer(c.sub_accounts, 2, 256)},
  });
}

} // namespace

namespace detail {

parse_fn store_section(store_config& c) {
  return section({
      {"data_dir", required, text(c.data_dir)},
      {"durability", required, one_of(c.durability, durability_names)},
      {"map_size_mib", optional, integer(c.map_size_mib, 1, uint64_t(1) << 24)},
      {"shards", optional, integer(c.shards, 1, 256)},
      {"transfers_resident_max", optional,
       integer(c.transfers_resident_max, 1000, uint64_t(1) << 32)},
  });
}

parse_fn batching_section(batching_config& c) {
  return section({
      {"batch_events_max", optional, integer(c.batch_events_max, 1, 65535)},
      {"commit_delay_us_max", optional, integer(c.commit_delay_us_max, 0, 1000000)},
      {"commit_events_max", optional, integer(c.commit_events_max, 1, 1u << 20)},
      {"queue_events_max", optional, integer(c.queue_events_max, 1, 1u << 26)},
  });
}

parse_fn hot_accounts_section(hot_accounts_config& c) {
  return section({
      {"static", optional, hot_static_list(c.static_accounts)},
      {"adaptive", optional, hot_adaptive_section(c.adaptive)},
      {"sweep_interval_ms", optional, integer(c.sweep_interval_ms, 0, 3600000)},
  });
}

} // namespace detail

std::string_view to_string(durability value) { return name_of(value, durability_names); }

} // namespace kassa::config
