// The shadow section: the separate store and the simulated providers of shadow traffic.
#include <algorithm>

#include "config/sections.hpp"

namespace kassa::config {
namespace detail {

parse_fn shadow_section(shadow_config& c) {
  return section({
      {"enabled", optional, boolean(c.enabled)},
      {"map_size_mib", optional, integer(c.map_size_mib, 1, uint64_t(1) << 24)},
      {"providers", optional, provider_list(c.providers)},
  });
}

// Shadow providers serve ledgers of the payment core, and none may be a real provider: shadow
// payments must never reach one.
void check_shadow(const reader& r, shadow_config& c, const config& all) {
  if (c.map_size_mib == 0) c.map_size_mib = all.store.map_size_mib;
  for (size_t i = 0; i < c.providers.size(); ++i) {
    const provider_config& p = c.providers[i];
    const std::string path = "shadow.providers[" + std::to_string(i) + "]";
    for (size_t j = 0; j < p.ledgers.size(); ++j) {
      const bool served = std::any_of(all.payments.ledgers.begin(), all.payments.ledgers.end(),
                                      [&](const payment_ledger& l) { return l.ledger == p.ledgers[j]; });
      if (!served) {
        r.fail(must_find(r, path + ".ledgers[" + std::to_string(j) + "]"),
               "ledger " + std::to_string(p.ledgers[j]) + " is not listed under payments.ledgers");
      }
    }
    for (size_t k = 0; k < all.payments.providers.size(); ++k) {
      const provider_config& real = all.payments.providers[k];
      if (real.host == p.host && real.port == p.port && real.path_prefix == p.path_prefix) {
        r.fail(must_find(r, path + ".url"),
               "is the url of payments.providers[" + std::to_string(k) + "] (" + real.name +
                   "); shadow payments must never reach a real provider: point it at a "
                   "kassa-channel-sim");
      }
    }
  }
}

} // namespace detail

} // namespace kassa::config
