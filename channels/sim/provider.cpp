#include "channels/sim/provider.hpp"

#include <nlohmann/json.hpp>

#include "channels/json_fields.hpp"
#include "channels/text.hpp"

namespace kassa::channels::sim {

using json = nlohmann::json;

namespace {

constexpr uint64_t ppm_one = 1'000'000;
constexpr size_t tokens_max = 100'000;

const forced forced_all[] = {forced::succeeded,          forced::declined,          forced::partial,
                             forced::mismatch,           forced::pending,           forced::late_success,
                             forced::duplicate_callback, forced::timeout,           forced::unknown,
                             forced::statement_missing,  forced::statement_mismatch, forced::statement_extra};

bool moved(pay_status s) { return s == pay_status::succeeded || s == pay_status::partial; }

// amount * ppm / 1e6 without overflowing 128 bits.
u128 scale_ppm(u128 amount, uint64_t ppm) {
  return (amount / ppm_one) * ppm + (amount % ppm_one) * ppm / ppm_one;
}

} // namespace

const char* name(forced f) {
  switch (f) {
    case forced::none: return "none";
    case forced::succeeded: return "succeeded";
    case forced::declined: return "declined";
    case forced::partial: return "partial";
    case forced::mismatch: return "mismatch";
    case forced::pending: return "pending";
    case forced::late_success: return "late_success";
    case forced::duplicate_callback: return "duplicate_callback";
    case forced::timeout: return "timeout";
    case forced::unknown: return "unknown";
    case forced::statement_missing: return "statement_missing";
    case forced::statement_mismatch: return "statement_mismatch";
    case forced::statement_extra: return "statement_extra";
  }
  return "?";
}

bool parse_forced(std::string_view text, forced& out) {
  for (forced f : forced_all) {
    if (text == name(f)) {
      out = f;
      return true;
    }
  }
  return false;
}

provider::provider(std::string name, behaviour b, uint64_t seed) : name_(std::move(name)), b_(b), rng_(seed) {}

uint64_t provider::latency_ms() {
  const uint64_t u = draw_ppm();
  if (u < 500'000) return b_.latency_min_ms + (b_.latency_median_ms - b_.latency_min_ms) * u / 500'000;
  if (u < 990'000) return b_.latency_median_ms + (b_.latency_p99_ms - b_.latency_median_ms) * (u - 500'000) / 490'000;
  return b_.latency_p99_ms + (b_.latency_max_ms - b_.latency_p99_ms) * (u - 990'000) / 10'000;
}

forced provider::take_forced() {
  if (forced_.empty()) return forced::none;
  forced f = forced_.front();
  forced_.pop_front();
  return f;
}

reply provider::error(unsigned status, std::string_view message) {
  counts_["http_" + std::to_string(status)]++;
  reply r;
  r.status = status;
  r.body = encode_error(message);
  return r;
}

bool provider::token_valid(const std::string& token, uint64_t now_ms) const {
  auto it = tokens_.find(token);
  return it != tokens_.end() && now_ms < it->second;
}

reply provider::answer(const payment_record& p, uint64_t delay_ms) const {
  payment_response r;
  r.payment_id = p.req.payment_id;
  r.status = p.status;
  r.amount = moved(p.status) ? p.amount_moved : p.req.amount;
  r.provider_ref = p.ref;
  reply out;
  out.body = encode(r);
  out.delay_ms = delay_ms;
  return out;
}

void provider::emit_event(const payment_record& p, bool duplicate) {
  for (int i = 0; i < (duplicate ? 2 : 1); ++i) {
    event e;
    e.sequence = ++event_sequence_;
    e.payment_id = p.req.payment_id;
    e.kind = p.req.kind;
    e.status = p.status;
    e.amount = moved(p.status) ? p.amount_moved : p.req.amount;
    e.provider_ref = p.ref;
    events_.push_back(std::move(e));
    if (events_.size() > b_.events_max) events_.pop_front();
  }
  counts_["events"] += duplicate ? 2 : 1;
  if (duplicate) counts_["duplicate_callbacks"]++;
}

void provider::note_injected(injected i) {
  counts_[i.type.rfind("payment_", 0) == 0 ? "payment_injected" : "statement_injected"]++;
  injected_.push_back(std::move(i));
  if (injected_.size() > b_.events_max) injected_.erase(injected_.begin());
}

void provider::write_statement(const payment_record& p, forced fault) {
  auto note = [this](injected i) { note_injected(std::move(i)); };
  auto push = [this](statement_line l) {
    l.sequence = ++statement_sequence_;
    statement_.push_back(l);
    if (statement_.size() > b_.events_max) statement_.pop_front();
    return l.sequence;
  };
  if (fault == forced::statement_missing || (fault == forced::none && hits(b_.statement_missing_ppm))) {
    note({"missing", p.req.payment_id, p.amount_moved, 0, 0, p.req.kind});
  } else {
    statement_line l;
    l.payment_id = p.req.payment_id;
    l.kind = p.req.kind;
    l.status = p.status;
    l.amount = p.amount_moved;
    l.ledger = p.req.ledger;
    l.provider_ref = p.ref;
    const bool off = fault == forced::statement_mismatch ||
                     (fault == forced::none && hits(b_.statement_amount_mismatch_ppm));
    if (off) {
      const u128 delta = b_.statement_mismatch_delta;
      l.amount = add_overflows(l.amount, delta) ? l.amount - delta : l.amount + delta;
    }
    const uint64_t seq = push(l);
    if (off) note({"amount_mismatch", p.req.payment_id, p.amount_moved, l.amount, seq, p.req.kind});
  }
  if (fault == forced::statement_extra || (fault == forced::none && hits(b_.statement_extra_ppm))) {
    statement_line x;
    do {
      x.payment_id = make_u128(rng_(), rng_());
    } while (x.payment_id == 0 || payments_.count(x.payment_id) != 0);
    x.kind = pay_kind::charge;
    x.status = pay_status::succeeded;
    x.amount = 1 + rng_() % 100'000;
    x.ledger = p.req.ledger;
    x.provider_ref = "ref-" + name_ + "-x" + std::to_string(ref_next_++);
    const uint64_t seq = push(x);
    note({"extra", x.payment_id, 0, x.amount, seq, x.kind});
  }
}

bool provider::mismatch_fits(const payment_request& req) const {
  if (req.kind != pay_kind::refund) return true;
  auto it = payments_.find(req.refund_of);
  if (it == payments_.end() || !moved(it->second.status)) return true; // declined either way
  const u128 room = it->second.amount_moved - it->second.refunded;
  return !add_overflows(req.amount, u128(b_.mismatch_delta)) && req.amount + b_.mismatch_delta <= room;
}

void provider::settle(payment_record& p, pay_status status, u128 amount, bool duplicate, forced statement_fault) {
  if (moved(status) && p.req.kind == pay_kind::refund) {
    // A refund moves money only out of what its charge moved and has not refunded yet.
    auto it = payments_.find(p.req.refund_of);
    const bool room = it != payments_.end() && it->second.req.kind == pay_kind::charge &&
                      moved(it->second.status) && it->second.req.ledger == p.req.ledger &&
                      it->second.amount_moved - it->second.refunded >= amount;
    if (room) {
      it->second.refunded += amount;
    } else {
      status = pay_status::declined;
      counts_["refunds_refused"]++;
    }
  }
  p.status = status;
  p.amount_moved = moved(status) ? amount : 0;
  counts_[std::string("settled_") + channels::name(status)]++;
  emit_event(p, duplicate);
  if (moved(status)) write_statement(p, statement_fault);
}

void provider::release_due(uint64_t now_ms) {
  while (!due_.empty() && due_.top().at_ms <= now_ms) {
    due d = due_.top();
    due_.pop();
    auto it = payments_.find(d.payment_id);
    if (it == payments_.end()) continue;
    settle(it->second, d.status, d.amount, d.duplicate, d.statement_fault);
    // a late success that moved (a refund beyond its charge's room is declined instead)
    if (d.late && moved(it->second.status))
      note_injected({"payment_late", d.payment_id, d.amount, it->second.amount_moved, 0, it->second.req.kind});
  }
}

reply provider::credentials(uint64_t now_ms) {
  counts_["credentials"]++;
  if (tokens_.size() >= tokens_max) {
    for (auto it = tokens_.begin(); it != tokens_.end();) it = now_ms >= it->second ? tokens_.erase(it) : std::next(it);
    if (tokens_.size() >= tokens_max) tokens_.erase(tokens_.begin());
  }
  credentials_response c;
  c.token = "tok-" + id_text(make_u128(rng_(), rng_()));
  c.expires_ms = b_.credential_ttl_ms;
  tokens_[c.token] = now_ms + b_.credential_ttl_ms;
  reply r;
  r.body = encode(c);
  r.delay_ms = b_.credential_latency_ms;
  return r;
}

reply provider::payment(std::string_view body, uint64_t now_ms) {
  release_due(now_ms);
  counts_["payment_calls"]++;
  payment_request req;
  std::string why;
  if (!decode(body, req, why)) return error(400, why);
  if (req.payment_id == 0) return error(400, "payment_id: zero is reserved");
  if (req.amount == 0) return error(400, "amount: zero");
  if (req.kind == pay_kind::refund && req.refund_of == 0) return error(400, "refund_of: a refund names its charge");
  if (req.kind != pay_kind::refund && req.refund_of != 0) return error(400, "refund_of: only refunds name a charge");
  if (b_.credentials_required && !token_valid(req.token, now_ms)) {
    return error(401, "token: missing, unknown or expired; POST /v1/credentials");
  }

  const forced f = take_forced();
  const bool free = f == forced::none; // random behaviour applies only when nothing is forced
  delivery how = delivery::answer;
  if (f == forced::timeout || (free && hits(b_.timeout_ppm))) how = delivery::hold;
  else if (f == forced::unknown || (free && hits(b_.unknown_ppm))) how = delivery::close;
  auto transport = [&](reply r) {
    if (how == delivery::hold) {
      counts_["timeouts"]++;
      r.how = how;
      r.delay_ms = b_.timeout_hold_ms;
    } else if (how == delivery::close) {
      counts_["unknowns"]++;
      r.how = how;
    }
    return r;
  };

  auto it = payments_.find(req.payment_id);
  if (it != payments_.end()) {
    const payment_request& was = it->second.req;
    if (was.kind != req.kind || was.amount != req.amount || was.ledger != req.ledger ||
        was.account_id != req.account_id || was.refund_of != req.refund_of) {
      return error(409, "payment_id: already used with different fields");
    }
    counts_["repeats"]++;
    return transport(answer(it->second, latency_ms()));
  }
  if (payments_.size() >= b_.payments_max) return error(503, "payments_max reached: the provider keeps no more payments");

  payment_record& p = payments_[req.payment_id];
  p.req = req;
  p.ref = "ref-" + name_ + "-" + std::to_string(ref_next_++);
  const uint64_t delay_ms = latency_ms();
  const bool duplicate = f == forced::duplicate_callback || (free && hits(b_.duplicate_callback_ppm));
  const forced statement_fault =
      (f == forced::statement_missing || f == forced::statement_mismatch || f == forced::statement_extra) ? f
                                                                                                        : forced::none;
  auto later = [&](uint64_t after_ms, u128 amount, bool late = false) {
    due_.push(due{now_ms + after_ms, due_order_++, req.payment_id, pay_status::succeeded, amount, duplicate,
                  statement_fault, late});
  };

  if (how != delivery::answer) {
    settle(p, pay_status::succeeded, req.amount, duplicate, statement_fault);
  } else if (f == forced::declined || (free && hits(b_.decline_ppm))) {
    settle(p, pay_status::declined, req.amount, duplicate, statement_fault);
  } else if (f == forced::pending || (free && hits(b_.pending_ppm))) {
    p.status = pay_status::pending;
    counts_["pending"]++;
    later(b_.callback_delay_ms, req.amount);
  } else if (f == forced::late_success || (free && hits(b_.late_callback_ppm))) {
    // Answered declined now (no event for it); the succeeded event comes late.
    p.status = pay_status::declined;
    counts_["late_success"]++;
    later(b_.late_callback_ms, req.amount, true);
  } else if (f == forced::partial || (free && hits(b_.partial_ppm))) {
    u128 part = scale_ppm(req.amount, b_.partial_amount_ppm);
    if (part == 0) part = 1;
    if (part > req.amount) part = req.amount;
    settle(p, pay_status::partial, part, duplicate, statement_fault);
    // (a refund beyond its charge's room is declined instead: nothing injected then)
    if (p.status == pay_status::partial) note_injected({"payment_partial", req.payment_id, req.amount, part, 0, req.kind});
  } else if ((f == forced::mismatch || (free && hits(b_.mismatch_ppm))) && mismatch_fits(req)) {
    const u128 delta = b_.mismatch_delta;
    const u128 amount = add_overflows(req.amount, delta) ? req.amount - delta : req.amount + delta;
    counts_["mismatches"]++;
    settle(p, pay_status::succeeded, amount, duplicate, statement_fault);
    if (p.status == pay_status::succeeded) note_injected({"payment_mismatch", req.payment_id, req.amount, amount, 0, req.kind});
  } else {
    settle(p, pay_status::succeeded, req.amount, duplicate, statement_fault);
  }
  return transport(answer(p, delay_ms));
}

reply provider::status(std::string_view id_text_in, uint64_t now_ms) {
  release_due(now_ms);
  counts_["status_queries"]++;
  u128 id = 0;
  if (!parse_id(id_text_in, id)) return error(400, "payment_id: not 32 hex digits");
  auto it = payments_.find(id);
  if (it == payments_.end()) {
    reply r;
    r.status = 404;
    r.body = encode_not_found();
    r.delay_ms = latency_ms();
    return r;
  }
  return answer(it->second, latency_ms());
}

reply provider::events(uint64_t after, uint64_t limit, uint64_t now_ms) {
  release_due(now_ms);
  std::vector<event> out;
  if (!events_.empty()) {
    const uint64_t first = events_.front().sequence;
    size_t i = after < first ? 0 : static_cast<size_t>(after - first + 1);
    for (; i < events_.size() && out.size() < limit; ++i) out.push_back(events_[i]);
  }
  reply r;
  r.body = encode_events(out);
  return r;
}

reply provider::statement(uint64_t after, uint64_t limit, uint64_t now_ms) {
  release_due(now_ms);
  std::vector<statement_line> out;
  if (!statement_.empty()) {
    const uint64_t first = statement_.front().sequence;
    size_t i = after < first ? 0 : static_cast<size_t>(after - first + 1);
    for (; i < statement_.size() && out.size() < limit; ++i) out.push_back(statement_[i]);
  }
  reply r;
  r.body = encode_statement(out);
  return r;
}

reply provider::admin_behaviour(std::string_view body) {
  json j;
  std::string why;
  if (!parse_object(body, j, why) || !apply_json(j, b_, why)) return error(400, why);
  reply r;
  r.body = dump(to_json(b_));
  return r;
}

reply provider::admin_force(std::string_view body) {
  json j;
  std::string why;
  if (!parse_object(body, j, why)) return error(400, why);
  fields f{why};
  const json* arr = f.array(j, "outcomes");
  if (!arr) return error(400, why);
  std::vector<forced> add;
  for (const json& o : *arr) {
    forced x;
    if (!o.is_string() || !parse_forced(o.get_ref<const std::string&>(), x)) {
      return error(400, "outcomes: each is one of succeeded, declined, partial, mismatch, pending, late_success, "
                        "duplicate_callback, timeout, unknown, statement_missing, statement_mismatch, statement_extra");
    }
    add.push_back(x);
  }
  if (forced_.size() + add.size() > b_.forced_max) return error(400, "outcomes: more than forced_max queued");
  forced_.insert(forced_.end(), add.begin(), add.end());
  reply r;
  r.body = dump(json{{"queued", forced_.size()}});
  return r;
}

reply provider::admin_injected() const {
  json arr = json::array();
  for (const auto& i : injected_) {
    arr.push_back(json{{"type", i.type},
                       {"payment_id", id_text(i.payment_id)},
                       {"amount_expected", amount_text(i.amount_expected)},
                       {"amount_reported", amount_text(i.amount_reported)},
                       {"sequence", i.sequence},
                       {"kind", channels::name(i.kind)}});
  }
  reply r;
  r.body = dump(json{{"injected", std::move(arr)}});
  return r;
}

reply provider::admin_stats(uint64_t now_ms, uint64_t connections) const {
  json counts = json::object();
  for (const auto& [k, v] : counts_) counts[k] = v;
  json j{{"provider", name_},
         {"payments", payments_.size()},
         {"events_sequence", event_sequence_},
         {"statement_sequence", statement_sequence_},
         {"forced_queued", forced_.size()},
         {"due", due_.size()},
         {"connections", connections},
         {"counts", std::move(counts)},
         {"behaviour", to_json(b_)}};
  reply r;
  r.body = dump(j);
  return r;
}

} // namespace kassa::channels::sim
