// libFuzzer target: any bytes given to the config parser yield a config or a config_error,
// never a crash, a hang or another exception. Run: config_fuzz -dict=config.dict corpus/config
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <string>

#include "config/config.hpp"
#include "ledger/system_ids.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace kassa::config;
  const std::string yaml(reinterpret_cast<const char*>(data), size);
  try {
    const config c = load_string(yaml, "fuzz.yaml");
    // A config that loads obeys every documented rule.
    if (c.source != "fuzz.yaml" || c.store.data_dir.empty() || c.server.address.empty() ||
        c.store.shards < 1 || c.store.shards > 256 ||
        c.batching.commit_events_max < c.batching.batch_events_max ||
        uint64_t(c.server.frame_bytes_max) < 128u * c.batching.batch_events_max + 256 ||
        c.batching.queue_events_max < c.batching.batch_events_max) {
      std::fprintf(stderr, "loaded a config that breaks a rule\n");
      std::abort();
    }
    for (size_t i = 0; i < c.hot_accounts.static_accounts.size(); ++i) {
      const auto& rule = c.hot_accounts.static_accounts[i];
      bool repeated = false;
      for (size_t j = 0; j < i; ++j) repeated |= c.hot_accounts.static_accounts[j].id == rule.id;
      if (rule.id == 0 || rule.id == kassa::u128_max || kassa::ledger::system_ids::reserved(rule.id) ||
          repeated || rule.sub_accounts < 2 || rule.sub_accounts > 256) {
        std::fprintf(stderr, "loaded a hot-account rule that breaks a rule\n");
        std::abort();
      }
    }
  } catch (const config_error& e) {
    if (e.source != "fuzz.yaml" || e.line < 0 || e.message.empty()) {
      std::fprintf(stderr, "malformed config_error: %s\n", e.what());
      std::abort();
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "unexpected exception: %s\n", e.what());
    std::abort();
  } catch (...) {
    std::fprintf(stderr, "unexpected non-standard exception\n");
    std::abort();
  }
  return 0;
}
