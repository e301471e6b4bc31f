// The shadow section (the shadow store of stress tests) and the stores a client may use: the
// defaults, every key read into its field, and each bad value refused at its key and line.
#include <catch2/catch.hpp>

#include <string>

#include "config/config.hpp"
#include "tests/config/error_cases.hpp"

using namespace kassa::config;
using kassa::test::check_errors;

namespace {

const std::string store = "store:\n  data_dir: /tmp/kassa\n  durability: none\n  map_size_mib: 512\n"; // lines 1-4
const std::string key = "  - {id: 7, key: 000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";
const std::string payments = "payments:\n"                                         // line 5
                             "  ledgers: [{ledger: 840, currency: USD}]\n"         // 6
                             "  providers:\n"                                      // 7
                             "    - {name: alpha, url: \"http://10.0.0.1:8080/p\", ledgers: [840]}\n"; // 8

} // namespace

TEST_CASE("without a shadow section the shadow store is on, sized like the real one, with no providers",
          "[config]") {
  const config c = load_string(store);
  CHECK(c.shadow.enabled);
  CHECK(c.shadow.map_size_mib == 512);
  CHECK(c.shadow.providers.empty());
}

TEST_CASE("every shadow key is read into its field", "[config]") {
  const config c = load_string(store + payments +
                               "shadow:\n"
                               "  enabled: false\n"
                               "  map_size_mib: 64\n"
                               "  providers:\n"
                               "    - {name: alpha, url: \"http://127.0.0.1:9000/p/alpha\", ledgers: [840],\n"
                               "       timeout_ms: 300, inflight_max: 4096}\n");
  CHECK_FALSE(c.shadow.enabled);
  CHECK(c.shadow.map_size_mib == 64);
  REQUIRE(c.shadow.providers.size() == 1);
  const provider_config& p = c.shadow.providers[0];
  CHECK(p.name == "alpha");
  CHECK(p.host == "127.0.0.1");
  CHECK(p.port == 9000);
  CHECK(p.path_prefix == "/p/alpha");
  CHECK(p.ledgers == std::vector<uint32_t>{840});
  CHECK(p.timeout_ms == 300);
  CHECK(p.inflight_max == 4096);
  CHECK(p.retries_max == provider_config{}.retries_max);
  // the real providers stay as they were
  REQUIRE(c.payments.providers.size() == 1);
  CHECK(c.payments.providers[0].host == "10.0.0.1");
}

TEST_CASE("a client uses the real store only unless its stores say otherwise", "[config]") {
  const config c = load_string(store + "access:\n  clients:\n" + key + "}\n" + key.substr(0, 9) + "8" +
                               key.substr(10) + ", stores: [shadow]}\n" + key.substr(0, 9) + "9" +
                               key.substr(10) + ", stores: [shadow, real]}\n");
  REQUIRE(c.access.clients.size() == 3);
  CHECK(c.access.clients[0].stores == access_store_real);
  CHECK(c.access.clients[1].stores == access_store_shadow);
  CHECK(c.access.clients[2].stores == (access_store_real | access_store_shadow));
}

TEST_CASE("a bad shadow section or client stores list is refused at its key and line", "[config]") {
  check_errors({
      {store + "shadow:\n  enabled: yes\n", 6, "shadow.enabled",
       "expected true or false, got 'yes'"},
      {store + "shadow:\n  map_size_mib: 0\n", 6, "shadow.map_size_mib",
       "must be between 1 and 16777216, got '0'"},
      {store + "shadow:\n  size: 1\n", 6, "shadow.size",
       "unknown key"},
      {store + payments + "shadow:\n  providers:\n    - {name: alpha, url: \"http://127.0.0.1:9000\", ledgers: [978]}\n",
       11, "shadow.providers[0].ledgers[0]", "ledger 978 is not listed under payments.ledgers"},
      {store + payments + "shadow:\n  providers:\n    - {name: sim, url: \"http://10.0.0.1:8080/p\", ledgers: [840]}\n",
       11, "shadow.providers[0].url",
       "is the url of payments.providers[0] (alpha); shadow payments must never reach a real provider: "
       "point it at a kassa-channel-sim"},
      {store + "shadow:\n  providers:\n    - {name: a, url: \"http://127.0.0.1:1\", ledgers: [1]}\n"
               "    - {name: a, url: \"http://127.0.0.1:2\", ledgers: [1]}\n",
       8, "shadow.providers[1].name", "duplicate provider name (first at shadow.providers[0].name, line 7)"},
      {store + "access:\n  clients:\n" + key + ", stores: [test]}\n", 7, "access.clients[0].stores[0]",
       "'test' is not one of: real, shadow"},
      {store + "access:\n  clients:\n" + key + ", stores: [shadow, shadow]}\n", 7, "access.clients[0].stores[1]",
       "duplicate store shadow"},
      {store + "access:\n  clients:\n" + key + ", stores: []}\n", 7, "access.clients[0].stores",
       "must list at least one store; leave stores out for the real store only"},
  });
}
