#include "runtime/cli_client.hpp"

#include <cstdio>
#include <cstdlib>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <iterator>
#include <map>
#include <sys/stat.h>
#include <optional>
#include <sstream>

#include "ledger/payments/records.hpp"
#include "ledger/result.hpp"
#include "ledger/system_ids.hpp"
#include "runtime/cli_cases.hpp"
#include "runtime/client/client.hpp"

namespace kassa::runtime {

namespace {

using namespace kassa::ledger;

constexpr int exit_ok = 0;
constexpr int exit_refused = 1;     // the ledger refused an event, or an id was not found
constexpr int exit_usage = 2;
constexpr int exit_unreachable = 3; // cannot connect to kassad
constexpr int exit_request = 4;     // kassad refused the request as a whole, or no answer in time
constexpr int exit_access = 5;      // authentication failed, or the client may not do this

struct usage_error : std::runtime_error {
  using std::runtime_error::runtime_error;
};

const std::map<std::string, std::string>& usages() {
  static const std::map<std::string, std::string> u{
      {"create-account",
       "usage: kassa create-account --id ID --ledger N --code N [--flags F,...]\n"
       "                            [--user-data-128 N] [--user-data-64 N] [--user-data-32 N]\n"
       "Flags: debits_must_not_exceed_credits, credits_must_not_exceed_debits, history, closed.\n"
       "Creating an account that exists with the same fields reports `exists` and succeeds.\n"},
      {"transfer",
       "usage: kassa transfer --id ID --from ACCOUNT --to ACCOUNT --amount N --ledger N --code N\n"
       "                      [--pending [--timeout SECONDS]] [--flags F,...] [--user-data-128 N]\n"
       "                      [--user-data-64 N] [--user-data-32 N]\n"
       "Moves AMOUNT minor units (an integer: cents, not dollars) from one account to another.\n"
       "--pending only reserves it; `kassa post` or `kassa void` resolves it later.\n"
       "Flags: balancing_debit, balancing_credit, closing_debit, closing_credit.\n"
       "The id makes the transfer idempotent: repeating the command reports `exists`.\n"},
      {"post",
       "usage: kassa post --id ID --pending-id ID [--amount N] [--ledger N]\n"
       "Posts a pending transfer: all of it, or --amount of it (the rest is released).\n"
       "--ledger states the pending transfer's ledger (a client limited to ledgers must).\n"},
      {"void",
       "usage: kassa void --id ID --pending-id ID [--ledger N]\n"
       "Voids a pending transfer: its hold is released and nothing moves.\n"
       "--ledger states the pending transfer's ledger (a client limited to ledgers must).\n"},
      {"lookup-account", "usage: kassa lookup-account ID [ID...]\nPrints accounts; exit 1 when any id is not found.\n"},
      {"lookup-transfer", "usage: kassa lookup-transfer ID [ID...]\nPrints transfers; exit 1 when any id is not found.\n"},
      {"history",
       "usage: kassa history ACCOUNT [--limit N] [--reversed] [--debits-only | --credits-only]\n"
       "                     [--after TIMESTAMP] [--before TIMESTAMP]\n"
       "Prints one page of the account's transfers (default 20, oldest first). For the next\n"
       "page pass --after the last timestamp printed (--before with --reversed).\n"},
      {"balances",
       "usage: kassa balances ACCOUNT [--limit N] [--reversed] [--after TIMESTAMP] [--before TIMESTAMP]\n"
       "Prints the account's balance after each transfer; the account needs the history flag.\n"},
      {"order",
       "usage: kassa order create   --key KEY --order ID --account MERCHANT --amount N --ledger N\n"
       "       kassa order pay      --key KEY --order ID --account PAYER --amount N\n"
       "                            --source balance|provider [--provider NAME]\n"
       "       kassa order topup    --key KEY --order ID --account ACCOUNT --amount N --ledger N\n"
       "                            [--provider NAME]\n"
       "       kassa order withdraw --key KEY --order ID --account ACCOUNT --amount N --ledger N\n"
       "                            [--provider NAME]\n"
       "       kassa order refund   --key KEY --order ID --amount N\n"
       "       kassa order transfer --key KEY --order ID --from ACCOUNT --to ACCOUNT --amount N\n"
       "                            --ledger N\n"
       "       kassa order show ID [ID...]\n"
       "All but show send one payment command (submit_payments) and print its reply: the result,\n"
       "the order's state, the order id, the amount moved and the fee. --key is the command's\n"
       "idempotency key: repeating the command with the same key reports `exists` and the state\n"
       "now. `in_progress` means accepted but not finished: `kassa order show ID` tells later.\n"
       "pay and refund act on an order (--order); the others create the order --order names.\n"
       "--provider picks a provider by name instead of the routing rules; --user-data-64 N is\n"
       "kept with the order. show prints orders, each order's pay items and refunds under it\n"
       "(kind, state, amount, what moved, fee, refunded, provider and the provider's payment id;\n"
       "a failed item has no fee); exit 1 when any id is not found.\n"},
      {"cases",
       "usage: kassa cases list [--open]\n"
       "       kassa cases show ID\n"
       "       kassa cases resolve ID --action accept|book|refund --note TEXT [--by NAME]\n"
       "                          [--direction from_suspense|to_suspense --amount N]\n"
       "                          (refund: [--amount N])\n"
       "Reconciliation cases in a running kassad (get_cases, resolve_case). list prints every\n"
       "case (--open: the open ones); show one case with how it was resolved. resolve closes an\n"
       "open case: accept books nothing; book books one correcting transfer between the case's\n"
       "account and the suspense account of its ledger, its direction and amount given, or, both\n"
       "left out, taken from a suspense case (all the money parked). refund asks the provider to\n"
       "give money a topup or pay brought in and kassa parked in suspense back to the payer (all\n"
       "of it, or --amount N of it) and, once the provider confirmed, books it out of suspense to\n"
       "the provider's clearing account; refund_outcome_unknown: resolve again later, the provider\n"
       "is asked the same refund and refunds once. --note (at most 128 bytes)\n"
       "says why; --by (default $USER, at most 32 bytes) who. Each resolution is journaled\n"
       "with the authenticated client id. A case is resolved once: asking again answers\n"
       "case_resolved and books nothing. Exit 1 when the case is unknown or the resolution refused.\n"},
  };
  return u;
}

const char* common_options =
    "\nCommon options: --address HOST:PORT (default $KASSA_ADDRESS or 127.0.0.1:3100),\n"
    "--json, --timeout-ms N (default 10000), --shadow (the shadow store of stress tests), --help.\n"
    "Authentication (docs/security.md): --client-id N (default $KASSA_CLIENT_ID) with the\n"
    "client's key: --client-key-file PATH (default $KASSA_CLIENT_KEY_FILE; a file only its\n"
    "owner may read) or --client-key HEX (default $KASSA_CLIENT_KEY; a value on the command\n"
    "line is visible to other users in the process list).\n";

// Parsed arguments: options with values, bare flags, and positionals.
struct args_t {
  std::map<std::string, std::string> values;
  std::map<std::string, bool> flags;
  std::vector<std::string> positional;

  std::optional<std::string> get(const std::string& k) const {
    auto it = values.find(k);
    if (it == values.end()) return std::nullopt;
    return it->second;
  }
  bool flag(const std::string& k) const { return flags.count(k) != 0; }
};

const std::vector<std::string> bare_flags{"json", "shadow", "pending", "reversed", "debits-only", "credits-only", "help", "open"};

args_t parse(const std::vector<std::string>& raw) {
  args_t a;
  for (size_t i = 0; i < raw.size(); ++i) {
    const std::string& s = raw[i];
    if (s == "-h") {
      a.flags["help"] = true;
    } else if (s.rfind("--", 0) == 0) {
      std::string key = s.substr(2), value;
      const size_t eq = key.find('=');
      if (eq != std::string::npos) {
        value = key.substr(eq + 1);
        key = key.substr(0, eq);
        a.values[key] = value;
      } else if (std::find(bare_flags.begin(), bare_flags.end(), key) != bare_flags.end()) {
        a.flags[key] = true;
      } else if (i + 1 < raw.size()) {
        a.values[key] = raw[++i];
      } else {
        throw usage_error("--" + key + " needs a value");
      }
    } else {
      a.positional.push_back(s);
    }
  }
  return a;
}

u128 number(const std::string& what, const std::string& text) {
  u128 v = 0;
  if (!parse_u128(text, v)) throw usage_error(what + " must be a whole number (decimal or 0x hex) below 2^128, got '" + text + "'");
  return v;
}

u128 required_number(const args_t& a, const std::string& key) {
  auto v = a.get(key);
  if (!v) throw usage_error("--" + key + " is required");
  return number("--" + key, *v);
}

template <class T>
T small_number(const std::string& what, const std::string& text) {
  const u128 v = number(what, text);
  if (v > static_cast<u128>(std::numeric_limits<T>::max())) {
    throw usage_error(what + " must be at most " + std::to_string(std::numeric_limits<T>::max()));
  }
  return static_cast<T>(v);
}

template <class T>
T optional_small(const args_t& a, const std::string& key, T fallback) {
  auto v = a.get(key);
  return v ? small_number<T>("--" + key, *v) : fallback;
}

template <class T>
T required_small(const args_t& a, const std::string& key) {
  auto v = a.get(key);
  if (!v) throw usage_error("--" + key + " is required");
  return small_number<T>("--" + key, *v);
}

uint16_t flag_bits(const std::string& list, const std::map<std::string, uint16_t>& known) {
  uint16_t bits = 0;
  std::stringstream ss(list);
  for (std::string name; std::getline(ss, name, ',');) {
    auto it = known.find(name);
    if (it == known.end()) {
      std::string names;
      for (auto& [n, b] : known) names += (names.empty() ? "" : ", ") + n;
      throw usage_error("unknown flag '" + name + "'; known: " + names);
    }
    bits |= it->second;
  }
  return bits;
}

const std::map<std::string, uint16_t> account_flag_names{
    {"debits_must_not_exceed_credits", account_debits_must_not_exceed_credits},
    {"credits_must_not_exceed_debits", account_credits_must_not_exceed_debits},
    {"history", account_history},
    {"closed", account_closed}};
const std::map<std::string, uint16_t> transfer_flag_names{
    {"balancing_debit", transfer_balancing_debit}, {"balancing_credit", transfer_balancing_credit},
    {"closing_debit", transfer_closing_debit}, {"closing_credit", transfer_closing_credit}};

std::string flag_names(uint16_t flags, bool account) {
  static const std::vector<std::pair<uint16_t, const char*>> a{
      {account_linked, "linked"}, {account_debits_must_not_exceed_credits, "debits_must_not_exceed_credits"},
      {account_credits_must_not_exceed_debits, "credits_must_not_exceed_debits"}, {account_history, "history"},
      {account_closed, "closed"}};
  static const std::vector<std::pair<uint16_t, const char*>> t{
      {transfer_linked, "linked"}, {transfer_pending, "pending"}, {transfer_post_pending, "post_pending_transfer"},
      {transfer_void_pending, "void_pending_transfer"}, {transfer_balancing_debit, "balancing_debit"},
      {transfer_balancing_credit, "balancing_credit"}, {transfer_closing_debit, "closing_debit"},
      {transfer_closing_credit, "closing_credit"}};
  std::string out;
  for (auto& [bit, name] : account ? a : t) {
    if (flags & bit) out += (out.empty() ? "" : ",") + std::string(name);
  }
  return out.empty() ? "-" : out;
}

std::string s128(u128 v) { return to_string_u128(v); }

// An id in human output: kassa's own accounts and transfers (docs/sharding.md) are named for
// what they are, with the number after it for scripts that copy it.
std::string id128(u128 v) {
  namespace sid = ledger::system_ids;
  switch (sid::kind_of(v)) {
    case sid::kind::clearing:
    case sid::kind::clearing_two_phase:
      return std::string(sid::is_two_phase_clearing(v) ? "two-phase " : "") + "clearing[shard " + std::to_string(sid::clearing_from(v)) + "->" + std::to_string(sid::clearing_to(v)) +
             " ledger " + std::to_string(sid::clearing_ledger(v)) + "]:" + s128(v);
    case sid::kind::sub: return "sub-account[" + std::to_string(u128_lo(v) & 0xFF) + "]:" + s128(v);
    case sid::kind::transfer: return "kassa:" + s128(v);
    case sid::kind::payment: return "payment:" + s128(v);
    case sid::kind::payment_account: {
      static const char* roles[] = {"?", "provider-clearing", "fees", "suspense", "escrow"};
      const unsigned r = static_cast<unsigned>(u128_lo(v) >> 56);
      return std::string(r < 5 ? roles[r] : "?") + "[provider " + std::to_string((u128_lo(v) >> 48) & 0xFF) +
             " shard " + std::to_string((u128_lo(v) >> 32) & 0xFFFF) + " ledger " +
             std::to_string(static_cast<uint32_t>(u128_lo(v))) + "]:" + s128(v);
    }
    case sid::kind::none: break;
  }
  return s128(v);
}
std::string q128(u128 v) { return "\"" + to_string_u128(v) + "\""; }

// credits_posted - debits_posted as a signed decimal.
std::string net(const account& a) {
  return a.credits_posted >= a.debits_posted ? s128(a.credits_posted - a.debits_posted)
                                             : "-" + s128(a.debits_posted - a.credits_posted);
}

std::string account_text(const account& a) {
  return "account " + id128(a.id) + "  ledger " + std::to_string(a.ledger) + "  code " + std::to_string(a.code) +
         "  flags " + flag_names(a.flags, true) + "\n  debits_pending " + s128(a.debits_pending) +
         "  debits_posted " + s128(a.debits_posted) + "  credits_pending " + s128(a.credits_pending) +
         "  credits_posted " + s128(a.credits_posted) + "  net (credits - debits posted) " + net(a) +
         "\n  user_data " + s128(a.user_data_128) + "/" + std::to_string(a.user_data_64) + "/" +
         std::to_string(a.user_data_32) + "  timestamp " + std::to_string(a.timestamp) + "\n";
}

std::string account_json(const account& a) {
  return "{\"id\":" + q128(a.id) + ",\"ledger\":" + std::to_string(a.ledger) + ",\"code\":" + std::to_string(a.code) +
         ",\"flags\":\"" + flag_names(a.flags, true) + "\",\"debits_pending\":" + q128(a.debits_pending) +
         ",\"debits_posted\":" + q128(a.debits_posted) + ",\"credits_pending\":" + q128(a.credits_pending) +
         ",\"credits_posted\":" + q128(a.credits_posted) + ",\"user_data_128\":" + q128(a.user_data_128) +
         ",\"user_data_64\":" + std::to_string(a.user_data_64) + ",\"user_data_32\":" + std::to_string(a.user_data_32) +
         ",\"timestamp\":" + std::to_string(a.timestamp) + "}";
}

std::string transfer_text(const transfer& t) {
  std::string s = "transfer " + id128(t.id) + "  " + id128(t.debit_account_id) + " -> " + id128(t.credit_account_id) +
                  "  amount " + s128(t.amount) + "  ledger " + std::to_string(t.ledger) + "  code " +
                  std::to_string(t.code) + "  flags " + flag_names(t.flags, false);
  if (t.pending_id != 0) s += "  pending_id " + id128(t.pending_id);
  if (t.timeout != 0) s += "  timeout " + std::to_string(t.timeout) + "s";
  return s + "  timestamp " + std::to_string(t.timestamp) + "\n";
}

std::string transfer_json(const transfer& t) {
  return "{\"id\":" + q128(t.id) + ",\"debit_account_id\":" + q128(t.debit_account_id) +
         ",\"credit_account_id\":" + q128(t.credit_account_id) + ",\"amount\":" + q128(t.amount) +
         ",\"pending_id\":" + q128(t.pending_id) + ",\"ledger\":" + std::to_string(t.ledger) +
         ",\"code\":" + std::to_string(t.code) + ",\"flags\":\"" + flag_names(t.flags, false) +
         "\",\"timeout\":" + std::to_string(t.timeout) + ",\"user_data_128\":" + q128(t.user_data_128) +
         ",\"user_data_64\":" + std::to_string(t.user_data_64) + ",\"user_data_32\":" + std::to_string(t.user_data_32) +
         ",\"timestamp\":" + std::to_string(t.timestamp) + "}";
}

std::string balance_text(const account_balance& b) {
  return "at " + std::to_string(b.timestamp) + "  debits_pending " + s128(b.debits_pending) + "  debits_posted " +
         s128(b.debits_posted) + "  credits_pending " + s128(b.credits_pending) + "  credits_posted " +
         s128(b.credits_posted) + "\n";
}

std::string balance_json(const account_balance& b) {
  return "{\"timestamp\":" + std::to_string(b.timestamp) + ",\"debits_pending\":" + q128(b.debits_pending) +
         ",\"debits_posted\":" + q128(b.debits_posted) + ",\"credits_pending\":" + q128(b.credits_pending) +
         ",\"credits_posted\":" + q128(b.credits_posted) + "}";
}

std::string provider_text(const char (&name)[payments::provider_name_bytes]) {
  const size_t n = strnlen(name, payments::provider_name_bytes);
  return n == 0 ? "-" : std::string(name, n);
}

std::string order_text(const payments::order& o) {
  using namespace payments;
  std::string s = "order " + s128(o.id) + "  kind " + std::string(name(kind(o.kind))) + "  state " +
                  std::string(name(order_state(o.state))) + "  ledger " + std::to_string(o.ledger) +
                  "  account " + id128(o.account_id);
  if (o.counterparty_id != 0) s += " -> " + id128(o.counterparty_id);
  s += "  amount " + s128(o.amount) + "\n  captured " + s128(o.amount_captured) + "  refunded " +
       s128(o.amount_refunded) + "  refund_pending " + s128(o.amount_refund_pending) + "  fee " + s128(payments::fee_charged(o)) +
       "  provider " + provider_text(o.provider) + "  provider_amount " + s128(o.provider_amount) +
       "\n  result " + std::string(name(payment_result(o.result))) + "  items " + std::to_string(o.items) +
       "  key " + s128(o.key) + "  parent " + s128(o.parent_id) + "  sequence " + std::to_string(o.sequence) +
       "  trace " + s128(o.trace_id) + "  user_data_64 " + std::to_string(o.user_data_64) + "  created_ns " + std::to_string(o.created_ns) +
       "  updated_ns " + std::to_string(o.updated_ns) + "\n";
  return s;
}

std::string order_json(const payments::order& o) {
  using namespace payments;
  return "{\"id\":" + q128(o.id) + ",\"kind\":\"" + std::string(name(kind(o.kind))) + "\",\"state\":\"" +
         std::string(name(order_state(o.state))) + "\",\"ledger\":" + std::to_string(o.ledger) +
         ",\"account_id\":" + q128(o.account_id) + ",\"counterparty_id\":" + q128(o.counterparty_id) +
         ",\"amount\":" + q128(o.amount) + ",\"amount_captured\":" + q128(o.amount_captured) +
         ",\"amount_refunded\":" + q128(o.amount_refunded) +
         ",\"amount_refund_pending\":" + q128(o.amount_refund_pending) + ",\"fee\":" + q128(payments::fee_charged(o)) +
         ",\"provider\":\"" + (provider_text(o.provider) == "-" ? "" : provider_text(o.provider)) +
         "\",\"provider_amount\":" + q128(o.provider_amount) + ",\"result\":\"" +
         std::string(name(payment_result(o.result))) + "\",\"items\":" + std::to_string(o.items) +
         ",\"key\":" + q128(o.key) + ",\"parent_id\":" + q128(o.parent_id) +
         ",\"trace_id\":" + q128(o.trace_id) + ",\"sequence\":" + std::to_string(o.sequence) +
         ",\"user_data_64\":" + std::to_string(o.user_data_64) + ",\"created_ns\":" +
         std::to_string(o.created_ns) + ",\"updated_ns\":" + std::to_string(o.updated_ns) + "}";
}

std::string payment_id_hex(u128 v) {
  if (v == 0) return "-";
  char buf[40];
  std::snprintf(buf, sizeof buf, "0x%016llx%016llx", (unsigned long long)u128_hi(v), (unsigned long long)u128_lo(v));
  return buf;
}

// An order's pay items and refunds, one line each under the order (docs/cli.md).
std::string items_text(const std::vector<payments::order_item>& items) {
  using namespace payments;
  char line[512];
  std::snprintf(line, sizeof line, "  %-8s %-8s %-18s %-12s %12s %12s %10s %12s  %-10s %s\n", "item", "kind", "state",
                "result", "amount", "moved", "fee", "refunded", "provider", "payment_id");
  std::string s = line;
  for (const auto& i : items) {
    const bool failed = order_state(i.state) == order_state::failed;
    std::snprintf(line, sizeof line, "  %-8s %-8s %-18s %-12s %12s %12s %10s %12s  %-10s %s\n", s128(i.id).c_str(),
                  std::string(name(kind(i.kind))).c_str(), std::string(name(order_state(i.state))).c_str(),
                  i.result == 0 ? "-" : std::string(name(payment_result(i.result))).c_str(), s128(i.amount).c_str(),
                  s128(i.amount_moved).c_str(), failed ? "-" : s128(i.fee).c_str(),
                  i.kind == uint16_t(kind::pay) ? s128(i.amount_refunded).c_str() : "-",
                  provider_text(i.provider).c_str(), payment_id_hex(i.provider_payment_id).c_str());
    s += line;
  }
  return s;
}

std::string item_json(const payments::order_item& i) {
  using namespace payments;
  const std::string provider = provider_text(i.provider);
  return "{\"id\":" + q128(i.id) + ",\"kind\":\"" + std::string(name(kind(i.kind))) + "\",\"state\":\"" +
         std::string(name(order_state(i.state))) + "\",\"result\":\"" + std::string(name(payment_result(i.result))) +
         "\",\"source\":\"" + (i.source == uint16_t(source::balance) ? "balance" : "provider") +
         "\",\"account_id\":" + q128(i.account_id) + ",\"refund_of\":" + q128(i.refund_of) +
         ",\"amount\":" + q128(i.amount) + ",\"amount_moved\":" + q128(i.amount_moved) +
         ",\"amount_refunded\":" + q128(i.amount_refunded) +
         ",\"amount_refund_pending\":" + q128(i.amount_refund_pending) + ",\"fee\":" + q128(i.fee) +
         ",\"provider\":\"" + (provider == "-" ? "" : provider) + "\",\"provider_payment_id\":\"" +
         (i.provider_payment_id == 0 ? "" : payment_id_hex(i.provider_payment_id)) +
         "\",\"sequence\":" + std::to_string(i.sequence) + "}";
}

struct session {
  client::blocking_client c;
  explicit session(const client::options& o) : c(o) {}
};

std::pair<std::string, uint16_t> address_of(const args_t& a) {
  std::string addr = "127.0.0.1:3100";
  if (const char* env = std::getenv("KASSA_ADDRESS")) addr = env;
  if (auto v = a.get("address")) addr = *v;
  const size_t colon = addr.rfind(':');
  if (colon == std::string::npos || colon == 0) throw usage_error("--address must be HOST:PORT, got '" + addr + "'");
  const std::string host = addr.substr(0, colon);
  const auto port = small_number<uint16_t>("the port of --address", addr.substr(colon + 1));
  return {host, port};
}

// One event's outcome: prints it and says whether it counts as success.
template <class Result>
bool report_outcome(bool json, const std::string& what, u128 id, std::optional<Result> failure) {
  const std::string code = failure ? std::string(name(*failure)) : "ok";
  const bool success = !failure || *failure == Result::exists;
  if (json) {
    std::printf("{\"%s\":%s,\"result\":\"%s\",\"ok\":%s}\n", what.c_str(), q128(id).c_str(), code.c_str(),
                success ? "true" : "false");
  } else {
    std::printf("%s %s: %s\n", what.c_str(), s128(id).c_str(),
                code == "exists" ? "exists (already applied with the same fields; nothing changed)" : code.c_str());
  }
  return success;
}

int run_transfer(session& s, bool json, const transfer& t) {
  auto failures = s.c.create_transfers({t});
  std::optional<transfer_result> failure;
  if (!failures.empty()) failure = failures[0].result;
  return report_outcome(json, "transfer", t.id, failure) ? exit_ok : exit_refused;
}

wire::filter filter_of(const args_t& a, bool balances) {
  if (a.positional.size() != 1) throw usage_error("give exactly one ACCOUNT id");
  wire::filter f;
  f.account_id = number("ACCOUNT", a.positional[0]);
  f.limit = optional_small<uint32_t>(a, "limit", 20);
  f.flags = wire::filter_debits | wire::filter_credits;
  if (!balances && a.flag("debits-only")) f.flags = wire::filter_debits;
  if (!balances && a.flag("credits-only")) f.flags = wire::filter_credits;
  if (a.flag("debits-only") && a.flag("credits-only")) throw usage_error("--debits-only and --credits-only exclude each other");
  if (a.flag("reversed")) f.flags |= wire::filter_reversed;
  if (auto v = a.get("after")) f.timestamp_min = small_number<uint64_t>("--after", *v) + 1;
  if (auto v = a.get("before")) {
    const uint64_t before = small_number<uint64_t>("--before", *v);
    if (before == 0) throw usage_error("--before must be above 0");
    f.timestamp_max = before - 1;
  }
  return f;
}

// `kassa order <what> ...`: one payment command, or `show` of orders.
int run_order(const args_t& a, session& s, bool json) {
  using namespace payments;
  if (a.positional.empty()) throw usage_error("give what to do: create, pay, topup, withdraw, refund, transfer or show");
  const std::string what = a.positional[0];
  if (what == "show") {
    if (a.positional.size() < 2) throw usage_error("give at least one order id");
    std::vector<u128> ids;
    for (size_t i = 1; i < a.positional.size(); ++i) ids.push_back(number("an order id", a.positional[i]));
    const auto orders = s.c.lookup_orders(ids);
    for (const auto& o : orders) {
      // an order of items (create_order) is shown with its pay items and refunds
      std::vector<payments::order_item> items;
      if (o.kind == uint16_t(kind::create_order)) items = s.c.lookup_order_items({o.id});
      if (json) {
        std::string line = order_json(o);
        if (o.kind == uint16_t(kind::create_order)) {
          line.pop_back(); // the closing brace
          line += ",\"order_items\":[";
          for (size_t i = 0; i < items.size(); ++i) line += (i ? "," : "") + item_json(items[i]);
          line += "]}";
        }
        std::printf("%s\n", line.c_str());
      } else {
        std::printf("%s", order_text(o).c_str());
        if (!items.empty()) std::printf("%s", items_text(items).c_str());
      }
    }
    if (orders.size() < ids.size()) {
      std::fprintf(stderr, "kassa: %zu of %zu order ids not found\n", ids.size() - orders.size(), ids.size());
      return exit_refused;
    }
    return exit_ok;
  }
  if (a.positional.size() != 1) throw usage_error("unexpected argument '" + a.positional[1] + "'");
  static const std::map<std::string, kind> kinds{
      {"create", kind::create_order}, {"pay", kind::pay},       {"topup", kind::topup},
      {"withdraw", kind::withdrawal}, {"refund", kind::refund}, {"transfer", kind::transfer}};
  const auto k = kinds.find(what);
  if (k == kinds.end()) throw usage_error("unknown order command '" + what + "'");
  payment_command c{};
  c.kind = uint16_t(k->second);
  c.key = required_number(a, "key");
  c.order_id = required_number(a, "order");
  c.amount = required_number(a, "amount");
  c.user_data_64 = optional_small<uint64_t>(a, "user-data-64", 0);
  if (k->second == kind::transfer) {
    c.account_id = required_number(a, "from");
    c.counterparty_id = required_number(a, "to");
  } else if (k->second != kind::refund) {
    c.account_id = required_number(a, "account");
  }
  if (k->second != kind::pay && k->second != kind::refund) c.ledger = required_small<uint32_t>(a, "ledger");
  if (k->second == kind::pay) {
    const auto src = a.get("source");
    if (!src || (*src != "balance" && *src != "provider")) throw usage_error("--source must be balance or provider");
    c.source = uint16_t(*src == "balance" ? source::balance : source::provider);
  }
  if (auto p = a.get("provider")) {
    const bool takes_provider = k->second == kind::topup || k->second == kind::withdrawal ||
                                (k->second == kind::pay && c.source == uint16_t(source::provider));
    if (!takes_provider) throw usage_error("--provider is only for topup, withdraw and pay --source provider");
    if (p->empty() || p->size() > provider_name_bytes) {
      throw usage_error("--provider must be 1 to " + std::to_string(provider_name_bytes) + " characters");
    }
    std::memcpy(c.provider, p->data(), p->size());
  }
  const auto replies = s.c.submit_payments({c});
  if (replies.size() != 1) throw client::error(client::error_kind::protocol, wire::status::ok, "not one reply to one command");
  const payment_reply& r = replies[0];
  const auto result = payment_result(r.result);
  const bool success = result == payment_result::ok || result == payment_result::in_progress ||
                       result == payment_result::exists;
  const std::string result_name(name(result)), state_name(name(order_state(r.state)));
  if (json) {
    std::printf("{\"order\":%s,\"result\":\"%s\",\"state\":\"%s\",\"amount\":%s,\"fee\":%s,\"ok\":%s}\n",
                q128(r.order_id).c_str(), result_name.c_str(), state_name.c_str(), q128(r.amount).c_str(),
                q128(r.fee).c_str(), success ? "true" : "false");
  } else {
    std::printf("order %s: %s  state %s  amount %s  fee %s\n", s128(r.order_id).c_str(), result_name.c_str(),
                state_name.c_str(), s128(r.amount).c_str(), s128(r.fee).c_str());
  }
  return success ? exit_ok : exit_refused;
}

// `kassa cases list|show|resolve`: the requests are built and printed in cli_cases.cpp.
int run_cases(const args_t& a, session& s, bool json) {
  if (a.positional.empty()) throw usage_error("give what to do: list, show or resolve");
  const std::string what = a.positional[0];
  const size_t args = what == "list" ? 1 : 2;
  if (a.positional.size() < args) throw usage_error("give the case id");
  if (a.positional.size() > args) throw usage_error("unexpected argument '" + a.positional[args] + "'");
  try {
    if (what == "list") return cases_list(s.c, a.flag("open"), json);
    const uint64_t id = small_number<uint64_t>("the case id", a.positional[1]);
    if (what == "show") return cases_show(s.c, id, json);
    if (what != "resolve") throw usage_error("unknown cases command '" + what + "'");
    case_resolution_args r;
    r.id = id;
    r.action = a.get("action").value_or("");
    r.direction = a.get("direction").value_or("");
    if (auto v = a.get("amount")) {
      r.amount = number("--amount", *v);
      if (r.amount == 0) throw usage_error("--amount must be above 0");
    }
    if (r.action == "refund") {
      if (!r.direction.empty()) throw usage_error("--direction: a refund moves money out of suspense only");
    } else if (r.direction.empty() != (r.amount == 0)) {
      throw usage_error("--direction and --amount go together");
    }
    r.note = a.get("note").value_or("");
    const char* user = std::getenv("USER");
    r.by = a.get("by").value_or(user != nullptr ? user : "");
    return cases_resolve(s.c, r, json);
  } catch (const std::invalid_argument& e) {
    throw usage_error(e.what());
  }
}

int dispatch(const std::string& cmd, const args_t& a, session& s, bool json) {
  if (cmd == "order") return run_order(a, s, json);
  if (cmd == "cases") return run_cases(a, s, json);
  if (cmd == "create-account") {
    account acc{};
    acc.id = required_number(a, "id");
    acc.ledger = required_small<uint32_t>(a, "ledger");
    acc.code = required_small<uint16_t>(a, "code");
    if (auto f = a.get("flags")) acc.flags = flag_bits(*f, account_flag_names);
    if (auto v = a.get("user-data-128")) acc.user_data_128 = number("--user-data-128", *v);
    acc.user_data_64 = optional_small<uint64_t>(a, "user-data-64", 0);
    acc.user_data_32 = optional_small<uint32_t>(a, "user-data-32", 0);
    auto failures = s.c.create_accounts({acc});
    std::optional<account_result> failure;
    if (!failures.empty()) failure = failures[0].result;
    return report_outcome(json, "account", acc.id, failure) ? exit_ok : exit_refused;
  }
  if (cmd == "transfer") {
    transfer t{};
    t.id = required_number(a, "id");
    t.debit_account_id = required_number(a, "from");
    t.credit_account_id = required_number(a, "to");
    if (auto f = a.get("flags")) t.flags = flag_bits(*f, transfer_flag_names);
    const bool balancing = (t.flags & (transfer_balancing_debit | transfer_balancing_credit)) != 0;
    t.amount = balancing && !a.get("amount") ? 0 : required_number(a, "amount");
    t.ledger = required_small<uint32_t>(a, "ledger");
    t.code = required_small<uint16_t>(a, "code");
    if (a.flag("pending")) t.flags |= transfer_pending;
    t.timeout = optional_small<uint32_t>(a, "timeout", 0);
    if (auto v = a.get("user-data-128")) t.user_data_128 = number("--user-data-128", *v);
    t.user_data_64 = optional_small<uint64_t>(a, "user-data-64", 0);
    t.user_data_32 = optional_small<uint32_t>(a, "user-data-32", 0);
    return run_transfer(s, json, t);
  }
  if (cmd == "post" || cmd == "void") {
    transfer t{};
    t.id = required_number(a, "id");
    t.pending_id = required_number(a, "pending-id");
    t.ledger = optional_small<uint32_t>(a, "ledger", 0);
    t.flags = cmd == "post" ? transfer_post_pending : transfer_void_pending;
    if (auto v = a.get("amount")) t.amount = number("--amount", *v);
    return run_transfer(s, json, t);
  }
  if (cmd == "lookup-account" || cmd == "lookup-transfer") {
    if (a.positional.empty()) throw usage_error("give at least one id");
    std::vector<u128> ids;
    for (const auto& p : a.positional) ids.push_back(number("an id", p));
    size_t found = 0;
    if (cmd == "lookup-account") {
      auto accounts = s.c.lookup_accounts(ids);
      found = accounts.size();
      for (const auto& acc : accounts) std::printf("%s", json ? (account_json(acc) + "\n").c_str() : account_text(acc).c_str());
    } else {
      auto transfers = s.c.lookup_transfers(ids);
      found = transfers.size();
      for (const auto& t : transfers) std::printf("%s", json ? (transfer_json(t) + "\n").c_str() : transfer_text(t).c_str());
    }
    if (found < ids.size()) {
      std::fprintf(stderr, "kassa: %zu of %zu ids not found\n", ids.size() - found, ids.size());
      return exit_refused;
    }
    return exit_ok;
  }
  if (cmd == "history") {
    auto transfers = s.c.get_account_transfers(filter_of(a, false));
    for (const auto& t : transfers) std::printf("%s", json ? (transfer_json(t) + "\n").c_str() : transfer_text(t).c_str());
    if (!json && transfers.empty()) std::printf("no transfers in this range\n");
    return exit_ok;
  }
  if (cmd == "balances") {
    auto balances = s.c.get_account_balances(filter_of(a, true));
    for (const auto& b : balances) std::printf("%s", json ? (balance_json(b) + "\n").c_str() : balance_text(b).c_str());
    if (!json && balances.empty()) std::printf("no balance history in this range (does the account have the history flag?)\n");
    return exit_ok;
  }
  throw usage_error("unknown command " + cmd);
}

// The client library's readers, with kassa's usage error.
std::vector<uint8_t> key_of_hex(const std::string& what, const std::string& text) {
  try {
    return client::key_of_hex(what, text);
  } catch (const std::invalid_argument& e) {
    throw usage_error(e.what());
  }
}

std::vector<uint8_t> key_of_file(const std::string& path) {
  try {
    return client::key_of_file(path);
  } catch (const std::invalid_argument& e) {
    throw usage_error(e.what());
  }
}

// --client-id and --client-key / --client-key-file, or their environment variables; a key
// needs an id. (--key is the idempotency key of `kassa order`.)
void credentials_of(const args_t& a, client::options& o) {
  auto value = [&](const std::string& key, const char* env) -> std::optional<std::string> {
    if (auto v = a.get(key)) return v;
    if (const char* e = std::getenv(env); e != nullptr && *e != '\0') return std::string(e);
    return std::nullopt;
  };
  if (auto id = value("client-id", "KASSA_CLIENT_ID")) o.client_id = small_number<uint64_t>("--client-id", *id);
  const auto key = a.get("client-key"), key_file = a.get("client-key-file");
  if (key && key_file) throw usage_error("--client-key and --client-key-file exclude each other");
  if (key) o.key = key_of_hex("--client-key", *key);
  else if (key_file) o.key = key_of_file(*key_file);
  else if (auto f = value("client-key-file", "KASSA_CLIENT_KEY_FILE")) o.key = key_of_file(*f);
  else if (auto k = value("client-key", "KASSA_CLIENT_KEY")) o.key = key_of_hex("$KASSA_CLIENT_KEY", *k);
  if (!o.key.empty() && o.client_id == 0) throw usage_error("a key needs --client-id (or $KASSA_CLIENT_ID)");
}

bool access_status(wire::status st) {
  return st == wire::status::unauthenticated || st == wire::status::forbidden ||
         st == wire::status::authentication_failed;
}

void explain_access(wire::status st) {
  switch (st) {
    case wire::status::unauthenticated:
      std::fprintf(stderr, "kassa: kassad requires authentication: give --client-id and "
                           "--client-key-file (see kassa help)\n");
      break;
    case wire::status::authentication_failed:
      std::fprintf(stderr, "kassa: kassad refused the client id or key; check them against its "
                           "access.clients\n");
      break;
    case wire::status::forbidden:
      std::fprintf(stderr, "kassa: this client may not make this request (its operations or ledgers "
                           "in kassad's access.clients); nothing was changed\n");
      break;
    default: break;
  }
}

} // namespace

bool is_client_command(const std::string& cmd) { return usages().count(cmd) != 0; }

std::string client_command_usage(const std::string& cmd) { return usages().at(cmd) + common_options; }

int run_client_command(const std::string& cmd, const std::vector<std::string>& raw) {
  args_t a;
  try {
    a = parse(raw);
    if (a.flag("help")) {
      std::fputs(client_command_usage(cmd).c_str(), stdout);
      return exit_ok;
    }
    const bool json = a.flag("json");
    const auto [host, port] = address_of(a);
    client::options o;
    o.request_timeout = std::chrono::milliseconds(optional_small<uint32_t>(a, "timeout-ms", 10000));
    credentials_of(a, o);
    o.shadow = a.flag("shadow");
    session s(o);
    try {
      s.c.connect(host, port, std::chrono::milliseconds(5000));
    } catch (const client::error& e) {
      if (e.kind == client::error_kind::status && access_status(e.status)) {
        std::fprintf(stderr, "kassa: kassad at %s:%u refused access: %s\n", host.c_str(), port,
                     std::string(wire::name(e.status)).c_str());
        explain_access(e.status);
        return exit_access;
      }
      std::fprintf(stderr, "kassa: cannot reach kassad at %s:%u: %s\n", host.c_str(), port, e.what());
      return e.kind == client::error_kind::status ? exit_request : exit_unreachable;
    }
    return dispatch(cmd, a, s, json);
  } catch (const usage_error& e) {
    std::fprintf(stderr, "kassa %s: %s\n\n%s", cmd.c_str(), e.what(), client_command_usage(cmd).c_str());
    return exit_usage;
  } catch (const client::error& e) {
    switch (e.kind) {
      case client::error_kind::status:
        std::fprintf(stderr, "kassa: kassad refused the request: %s (%s)\n", std::string(wire::name(e.status)).c_str(), e.what());
        if (access_status(e.status)) {
          explain_access(e.status);
          return exit_access;
        }
        if (e.status == wire::status::filter_invalid) return exit_usage;
        if (e.status == wire::status::payments_disabled) {
          std::fprintf(stderr, a.flag("shadow")
                                   ? "kassa: the shadow store of this kassad has no payment core (payments.enabled: "
                                     "false, or no shadow.providers in its configuration)\n"
                                   : "kassa: the payment core is off in this kassad (payments.enabled: false in its "
                                     "configuration)\n");
        }
        if (e.status == wire::status::reconciliation_disabled) {
          std::fprintf(stderr, "kassa: reconciliation is off in this kassad (payments.reconciliation.enabled: "
                               "false), or the request had --shadow; nothing was changed\n");
        }
        if (e.status == wire::status::shadow_disabled) {
          std::fprintf(stderr, "kassa: the shadow store is off in this kassad (shadow.enabled: false in its "
                               "configuration); nothing was changed\n");
        }
        return exit_request;
      case client::error_kind::timeout:
        std::fprintf(stderr, "kassa: no answer in time; the outcome is unknown: run the same command "
                             "again (same id) to find out (%s)\n", e.what());
        return exit_request;
      case client::error_kind::connection:
        std::fprintf(stderr, "kassa: the connection to kassad was lost; the outcome is unknown: run the "
                             "same command again (same id) to find out (%s)\n", e.what());
        return exit_unreachable;
      case client::error_kind::protocol:
        std::fprintf(stderr, "kassa: kassad answered something this client cannot read: %s\n", e.what());
        return exit_request;
    }
  }
  return exit_request;
}

} // namespace kassa::runtime
