// The ledger workloads: transfers (uniform random pairs), hot (a share of the credits to one
// account) and lookups (lookup_accounts / lookup_transfers with a share of writes).
#include <cstring>
#include <random>

#include "ledger/result.hpp"
#include "ledger/types.hpp"
#include "perf/bench/acked_log.hpp"
#include "perf/bench/workload.hpp"
#include "primitives/assert.hpp"

namespace kassa::bench {
namespace {

constexpr uint32_t not_found = ledger::transfer_result_count;
constexpr uint32_t unknown_code = ledger::transfer_result_count + 1;

class ledger_generator final : public generator {
public:
  ledger_generator(const scenario& s, uint32_t connection, acked_log* log)
      : s_(s), log_(log), base_(account_base(s)), rng_(s.seed * 1000003 + connection), first_id_(first_transfer_id(s.seed, connection)),
        next_id_(first_id_), slots_(s.depth) {}

  request_shape next(size_t slot, std::vector<uint8_t>& body) override {
    slot_info& info = slots_[slot];
    info.op = wire::operation::create_transfers;
    if (s_.kind == scenario_kind::lookups && percent() >= s_.writes_percent) {
      info.op = percent() < s_.lookup_accounts_percent ? wire::operation::lookup_accounts
                                                       : wire::operation::lookup_transfers;
    }
    info.events = s_.events;
    if (info.op == wire::operation::create_transfers) {
      info.first_id = next_id_;
      write_transfers(body);
    } else {
      body.resize(size_t(s_.events) * sizeof(u128));
      for (uint32_t i = 0; i < s_.events; ++i) {
        const u128 id = info.op == wire::operation::lookup_accounts ? base_ + 1 + rng_() % s_.accounts : some_transfer_id();
        std::memcpy(body.data() + i * sizeof id, &id, sizeof id);
      }
    }
    return {info.op, info.events};
  }

  void replied(size_t slot, const uint8_t* body, size_t bytes, tally& t) override {
    const slot_info& info = slots_[slot];
    if (info.op == wire::operation::create_transfers) {
      const size_t n = bytes / sizeof(wire::event_result);
      failed_.resize(n);
      if (n > 0) std::memcpy(failed_.data(), body, n * sizeof(wire::event_result));
      for (const auto& f : failed_) t.results[f.result < ledger::transfer_result_count ? f.result : unknown_code]++;
      t.results[0] += info.events - std::min<size_t>(n, info.events);
      if (log_ != nullptr) log_->record(info.first_id, info.events, failed_.data(), n);
    } else {
      const size_t found = std::min<size_t>(bytes / 128, info.events); // accounts and transfers are 128 bytes
      t.results[0] += found;
      t.results[not_found] += info.events - found;
    }
  }

private:
  struct slot_info {
    wire::operation op = wire::operation::create_transfers;
    uint32_t events = 0;
    u128 first_id = 0;
  };

  uint32_t percent() { return uint32_t(rng_() % 100); }

  uint64_t amount() {
    const uint64_t span = s_.amount_max - s_.amount_min;
    return span == 0 ? s_.amount_min : s_.amount_min + (span == UINT64_MAX ? rng_() : rng_() % (span + 1));
  }

  // Half the time a funding transfer of the setup, else one this connection wrote.
  u128 some_transfer_id() {
    if (next_id_ == first_id_ || rng_() % 2 == 0) return funding_transfer_id(base_ + 1 + rng_() % s_.accounts);
    return first_id_ + u128{rng_() % uint64_t(next_id_ - first_id_)};
  }

  // Consecutive ids (--acked-log relies on it); the accounts in user_data_128 (debit << 64 |
  // credit) and the amount in user_data_64, so a checker can tell a stored transfer from a
  // damaged one.
  void write_transfers(std::vector<uint8_t>& body) {
    body.resize(size_t(s_.events) * sizeof(ledger::transfer));
    for (uint32_t i = 0; i < s_.events; ++i) {
      ledger::transfer t{};
      t.id = next_id_++;
      const bool hot = s_.hot_percent > 0 && percent() < s_.hot_percent;
      const uint64_t credit = hot ? s_.hot_account : 1 + rng_() % s_.accounts;
      // Any account but the credit one, in one draw.
      uint64_t debit = 1 + rng_() % (s_.accounts - 1);
      if (debit >= credit) debit++;
      t.credit_account_id = base_ + credit;
      t.debit_account_id = base_ + debit;
      t.amount = amount();
      t.ledger = s_.ledger;
      t.code = 1;
      t.user_data_128 = make_u128(debit, credit);
      t.user_data_64 = uint64_t(t.amount);
      std::memcpy(body.data() + i * sizeof t, &t, sizeof t);
    }
    KASSA_ASSERT(next_id_ - first_id_ < (u128{1} << 56));
  }

  const scenario& s_;
  acked_log* log_;
  const u128 base_;
  std::mt19937_64 rng_;
  const u128 first_id_;
  u128 next_id_;
  std::vector<slot_info> slots_;
  std::vector<wire::event_result> failed_;
};

class ledger_workload final : public workload {
public:
  ledger_workload(const scenario& s, acked_log* log) : s_(s), log_(log) {
    for (uint32_t c = 0; c < ledger::transfer_result_count; ++c)
      names_.emplace_back(ledger::name(static_cast<ledger::transfer_result>(c)));
    names_.push_back("not_found");
    names_.push_back("unknown");
  }
  std::unique_ptr<generator> make_generator(uint32_t connection) override {
    return std::make_unique<ledger_generator>(s_, connection, log_);
  }
  const std::vector<std::string>& result_names() const override { return names_; }

private:
  const scenario& s_;
  acked_log* log_;
  std::vector<std::string> names_;
};

} // namespace

std::unique_ptr<workload> make_ledger_workload(const scenario& s, acked_log* log) {
  return std::make_unique<ledger_workload>(s, log);
}

} // namespace kassa::bench
