// The payments workload: submit_payments requests mixing top-ups, withdrawals, transfers and
// refunds. A refund needs a paid order, so the refund share runs a chain per connection:
// create_order, then pay it (through a provider, or pay_from_balance_percent of the time from
// the payer's balance) once kassad answered `created`, then refund it in full once the pay
// answered `completed`; each draw of the refund share sends the furthest step it can. Accounts (setup): users 1..N (debits_must_not_exceed_credits, funded from the
// bank), the bank N+1, the merchant N+2 that the orders pay.
#include <cstring>
#include <deque>
#include <random>

#include "ledger/payments/records.hpp"
#include "perf/bench/acked_log.hpp"
#include "perf/bench/workload.hpp"

namespace kassa::bench {
namespace {

namespace lp = ledger::payments;
constexpr uint32_t payment_result_count = lp::payment_result_max + 1;
constexpr size_t orders_kept_max = 100'000; // per connection, waiting to be paid or refunded

class payments_generator final : public generator {
public:
  payments_generator(const scenario& s, uint32_t connection, acked_log* log)
      : s_(s), log_(log), base_(account_base(s)), rng_(s.seed * 1000003 + connection), key_base_((u128{s.seed} << 64) | (u128{connection} << 40)),
        slots_(s.depth) {}

  request_shape next(size_t slot, std::vector<uint8_t>& body) override {
    auto& sent = slots_[slot];
    sent.clear();
    body.resize(size_t(s_.events) * sizeof(lp::payment_command));
    for (uint32_t i = 0; i < s_.events; ++i) {
      const lp::payment_command c = command();
      sent.push_back(c);
      std::memcpy(body.data() + i * sizeof c, &c, sizeof c);
    }
    return {wire::operation::submit_payments, s_.events};
  }

  void failed(size_t slot, tally& t) override {
    for (const auto& c : slots_[slot]) t.commands[c.kind < t.commands.size() ? c.kind : 0]++;
  }

  void replied(size_t slot, const uint8_t* body, size_t bytes, tally& t) override {
    const auto& sent = slots_[slot];
    const size_t n = bytes / sizeof(lp::payment_reply);
    replies_.resize(n);
    if (n != 0) std::memcpy(replies_.data(), body, n * sizeof(lp::payment_reply));
    if (log_ != nullptr) log_->record_payments(sent.data(), sent.size(), replies_.data(), n);
    for (const lp::payment_reply& r : replies_) {
      t.results[r.result < payment_result_count ? r.result : payment_result_count]++;
      if (r.index >= sent.size()) continue;
      const lp::payment_command& c = sent[r.index];
      t.commands[c.kind < t.commands.size() ? c.kind : 0]++;
      if (r.result != uint32_t(lp::payment_result::ok)) continue;
      if (lp::kind(c.kind) == lp::kind::create_order && r.state == uint16_t(lp::order_state::created) &&
          created_.size() < orders_kept_max)
        created_.push_back({lp::kind(c.kind), c.order_id, c.amount});
      if (lp::kind(c.kind) == lp::kind::pay && r.state == uint16_t(lp::order_state::completed) && paid_.size() < orders_kept_max)
        paid_.push_back({lp::kind(c.kind), c.order_id, c.amount});
    }
  }

private:
  struct command_sent {
    lp::kind kind;
    u128 order_id;
    u128 amount;
  };

  u128 user() { return base_ + 1 + rng_() % s_.accounts; }
  u128 amount() {
    const uint64_t span = s_.amount_max - s_.amount_min;
    return span == 0 ? s_.amount_min : s_.amount_min + (span == UINT64_MAX ? rng_() : rng_() % (span + 1));
  }

  lp::payment_command command() {
    lp::payment_command c{};
    c.key = key_base_ | ++counter_;
    const uint32_t r = uint32_t(rng_() % 100);
    const uint32_t topup_to = s_.topup_percent, withdrawal_to = topup_to + s_.withdrawal_percent,
                   transfer_to = withdrawal_to + s_.transfer_percent;
    if (r < withdrawal_to) { // a top-up or a withdrawal: the user, an amount, through a provider
      c.kind = uint16_t(r < topup_to ? lp::kind::topup : lp::kind::withdrawal);
      c.order_id = c.key;
      c.account_id = user();
      c.amount = amount();
      c.ledger = s_.ledger;
      provider(c);
    } else if (r < transfer_to) {
      c.kind = uint16_t(lp::kind::transfer);
      c.order_id = c.key;
      c.account_id = user();
      c.counterparty_id = base_ + 1 + rng_() % (s_.accounts - 1);
      if (c.counterparty_id >= c.account_id) c.counterparty_id++;
      c.amount = amount();
      c.ledger = s_.ledger;
    } else if (!paid_.empty()) { // the refund chain, furthest step first
      c.kind = uint16_t(lp::kind::refund);
      c.order_id = paid_.front().order_id;
      c.amount = paid_.front().amount;
      paid_.pop_front();
    } else if (!created_.empty()) {
      c.kind = uint16_t(lp::kind::pay);
      c.order_id = created_.front().order_id;
      c.amount = created_.front().amount;
      c.account_id = user();
      // (no draw when every pay goes through a provider: the seeds of such runs send what they sent before)
      if (s_.pay_from_balance_percent != 0 && rng_() % 100 < s_.pay_from_balance_percent) {
        c.source = uint16_t(lp::source::balance);
      } else {
        c.source = uint16_t(lp::source::provider);
        provider(c);
      }
      created_.pop_front();
    } else {
      c.kind = uint16_t(lp::kind::create_order);
      c.order_id = c.key;
      c.account_id = base_ + s_.accounts + 2; // the merchant
      c.amount = amount();
      c.ledger = s_.ledger;
    }
    return c;
  }

  // The next of the scenario's channels, in turn; none: kassad's routing chooses.
  void provider(lp::payment_command& c) {
    if (s_.providers.empty()) return;
    const std::string& p = s_.providers[provider_next_++ % s_.providers.size()];
    std::memcpy(c.provider, p.data(), p.size());
  }

  const scenario& s_;
  acked_log* log_;
  const u128 base_;
  std::mt19937_64 rng_;
  const u128 key_base_;
  uint64_t counter_ = 0;
  size_t provider_next_ = 0;
  std::vector<std::vector<lp::payment_command>> slots_; // what each request in flight sent
  std::vector<lp::payment_reply> replies_;
  std::deque<command_sent> created_, paid_;
};

class payments_workload final : public workload {
public:
  payments_workload(const scenario& s, acked_log* log) : s_(s), log_(log) {
    for (uint32_t c = 0; c < payment_result_count; ++c) names_.emplace_back(lp::name(lp::payment_result(c)));
    names_.push_back("unknown");
  }
  std::unique_ptr<generator> make_generator(uint32_t connection) override {
    return std::make_unique<payments_generator>(s_, connection, log_);
  }
  const std::vector<std::string>& result_names() const override { return names_; }

private:
  const scenario& s_;
  acked_log* log_;
  std::vector<std::string> names_;
};

} // namespace

std::unique_ptr<workload> make_payments_workload(const scenario& s, acked_log* log) {
  return std::make_unique<payments_workload>(s, log);
}

} // namespace kassa::bench
