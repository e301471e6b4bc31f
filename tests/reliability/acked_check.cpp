// acked_check: checks a running kassad against the --acked-log files of kassa-bench (docs/performance.md).
//
// usage: acked_check --address 127.0.0.1:PORT [--resend LOG]... [LOG]...
//
// For every logged (acknowledged) request: each transfer that was answered ok is stored with
// the fields kassa-bench sent (id, accounts from user_data_128, amount from the log header,
// ledger 1, code 1, no flags, a timestamp), and each transfer that was refused is absent.
// The transfers of a log named by --resend are checked, then the stored ones are sent again and requires `exists` for every one
// (nothing is applied twice). Then the accounts 1..N+1 of the log header (N limited ones and
// the bank): none overdrawn (debits_posted + debits_pending <= credits_posted), and over all
// of them debits equal credits, posted and pending.
// Prints one summary line; exit 0 when there is no violation, 1 when there is, 2 bad usage,
// 3 when kassad cannot be asked.
#include <algorithm>
#include <cstdio>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "primitives/assert.hpp"
#include "runtime/client/client.hpp"
#include "tests/reliability/acked_log.hpp"

using namespace kassa;
using namespace kassa::ledger;

namespace {

constexpr size_t chunk_events_max = 8000;    // ids per lookup or resend request (< batch_events_max)
constexpr size_t request_events_max = 1u << 20; // the most transfers one log line may name
constexpr size_t problems_printed_max = 20;    // detail lines; the counts say the rest

[[noreturn]] void usage(const std::string& why) {
  std::fprintf(stderr, "acked_check: %s\nsee the comment at the top of tests/reliability/acked_check.cpp\n",
               why.c_str());
  std::exit(2);
}

struct log_header {
  uint64_t accounts = 0;
  u128 transfer_amount = 0;
};

struct acked_transfer {
  u128 id;
  bool ok; // answered ok; otherwise refused
};

struct counts {
  uint64_t acked = 0, refused = 0, missing = 0, mismatched = 0, refused_present = 0;
  uint64_t resent = 0, resent_not_exists = 0;
  uint64_t accounts = 0, accounts_missing = 0, accounts_mismatched = 0, overdrawn = 0, unbalanced = 0;
  uint64_t violations() const {
    return missing + mismatched + refused_present + resent_not_exists + accounts_missing + accounts_mismatched +
           overdrawn + unbalanced;
  }
};

size_t problems_printed = 0;
void problem(const std::string& what) {
  if (problems_printed++ < problems_printed_max) std::fprintf(stderr, "acked_check: violation: %s\n", what.c_str());
}

std::string id_text(u128 id) { return to_string_u128(id); }

// Transfer ids as the log writes them.
std::string hex(u128 v) { return "0x" + to_hex_u128(v); }

std::string field(const std::string& header, const std::string& key) { return test::log_field(header, key, usage); }

// What kassa-bench sent, as far as the stored record can show it; empty when it all agrees.
std::string mismatch(const transfer& t, const log_header& h) {
  const u128 debit = u128_hi(t.user_data_128), credit = u128_lo(t.user_data_128);
  if (t.debit_account_id != debit || t.credit_account_id != credit) return "accounts differ from user_data_128";
  if (debit < 1 || debit > h.accounts || credit < 1 || credit > h.accounts || debit == credit) return "accounts out of range";
  if (t.amount != h.transfer_amount || t.user_data_64 != h.transfer_amount) return "amount";
  if (t.ledger != 1 || t.code != 1 || t.flags != 0 || t.pending_id != 0 || t.timeout != 0) return "ledger, code or flags";
  if (t.timestamp == 0) return "no timestamp";
  return "";
}

// Checks the acknowledged transfers a chunk at a time, as the logs are read.
class transfer_checker {
public:
  transfer_checker(client::blocking_client& kassad, counts& c) : kassad_(kassad), c_(c) {}

  void add(const acked_transfer& t, const log_header& h, bool resend) {
    if (!chunk_.empty() && (h.accounts != header_.accounts || h.transfer_amount != header_.transfer_amount ||
                            resend != resend_)) {
      flush();
    }
    header_ = h;
    resend_ = resend;
    chunk_.push_back(t);
    if (chunk_.size() == chunk_events_max) flush();
  }

  void flush() {
    if (chunk_.empty()) return;
    std::vector<u128> ids;
    for (const auto& t : chunk_) ids.push_back(t.id);
    std::map<u128, transfer> found;
    for (const auto& t : kassad_.lookup_transfers(ids)) found[t.id] = t;
    std::vector<transfer> stored; // to send again
    for (const auto& t : chunk_) {
      const auto it = found.find(t.id);
      if (!t.ok) {
        c_.refused++;
        if (it != found.end()) {
          c_.refused_present++;
          problem("transfer " + hex(t.id) + " was refused but is stored");
        }
        continue;
      }
      c_.acked++;
      if (it == found.end()) {
        c_.missing++;
        problem("acknowledged transfer " + hex(t.id) + " is missing");
        continue;
      }
      const std::string why = mismatch(it->second, header_);
      if (!why.empty()) {
        c_.mismatched++;
        problem("transfer " + hex(t.id) + ": " + why);
      }
      transfer again = it->second;
      again.timestamp = 0;
      stored.push_back(again);
    }
    chunk_.clear();
    if (!resend_ || stored.empty()) return;
    // Every event of the resend must answer `exists`; one that answers ok was applied twice.
    std::vector<transfer_result> results(stored.size(), transfer_result::ok);
    for (const auto& o : kassad_.create_transfers(stored)) {
      KASSA_ASSERT(o.index < stored.size());
      results[o.index] = o.result;
    }
    c_.resent += stored.size();
    for (size_t i = 0; i < stored.size(); ++i) {
      if (results[i] == transfer_result::exists) continue;
      c_.resent_not_exists++;
      problem("resent transfer " + hex(stored[i].id) + " answered " + std::string(name(results[i])));
    }
  }

private:
  client::blocking_client& kassad_;
  counts& c_;
  bool resend_ = false;
  log_header header_;
  std::vector<acked_transfer> chunk_;
};

// Reads one log and hands every transfer of every acknowledged request to the checker.
// Returns the log's header.
log_header check_log(const std::string& path, bool resend, transfer_checker& checker) {
  log_header h;
  auto header = [&](const std::string& line, const std::string& where) {
    u128 accounts = 0;
    if (!parse_u128(field(line, "accounts"), accounts) || !parse_u128(field(line, "transfer_amount"), h.transfer_amount) ||
        accounts < 2 || accounts > (u128{1} << 40)) {
      usage(where + ": bad header");
    }
    h.accounts = static_cast<uint64_t>(accounts);
  };
  test::read_acked_log(path, usage, header, [&](const std::string& line, const std::string& where) {
    if (h.accounts == 0) usage(where + ": a request before the header");
    std::istringstream fields(line);
    std::string first_text, failed_text;
    size_t count = 0;
    u128 first = 0;
    if (!(fields >> first_text >> count >> failed_text) || !parse_u128(first_text, first) || count == 0 ||
        count > request_events_max) {
      usage(where + ": expected '<first_id_hex> <count> <failed indexes or ->', got '" + line + "'");
    }
    std::set<size_t> failed;
    if (failed_text != "-") {
      std::istringstream list(failed_text);
      for (std::string index; std::getline(list, index, ',');) {
        const size_t i = std::stoul(index);
        if (i >= count) usage(where + ": failed index " + index + " beyond the request");
        failed.insert(i);
      }
    }
    for (size_t i = 0; i < count; ++i) checker.add({first + i, failed.count(i) == 0}, h, resend);
  });
  if (h.accounts == 0) usage(path + ": no header (is it an --acked-log of kassa-bench?)");
  return h;
}

// The accounts 1..N (limited) and the bank N+1 that kassa-bench's setup made.
void check_accounts(client::blocking_client& kassad, uint64_t accounts_n, counts& c) {
  const u128 bank = u128{accounts_n} + 1;
  u128 debits_posted = 0, credits_posted = 0, debits_pending = 0, credits_pending = 0;
  for (u128 begin = 1; begin <= bank; begin += chunk_events_max) {
    std::vector<u128> ids;
    for (u128 id = begin; id <= bank && id < begin + chunk_events_max; ++id) ids.push_back(id);
    const auto found = kassad.lookup_accounts(ids);
    c.accounts += found.size();
    if (found.size() < ids.size()) {
      c.accounts_missing += ids.size() - found.size();
      problem(std::to_string(ids.size() - found.size()) + " of the accounts " + id_text(begin) + ".. are missing");
    }
    for (const auto& a : found) {
      debits_posted += a.debits_posted;
      credits_posted += a.credits_posted;
      debits_pending += a.debits_pending;
      credits_pending += a.credits_pending;
      const bool limited = has(a.flags, account_debits_must_not_exceed_credits);
      if (limited != (a.id != bank)) {
        c.accounts_mismatched++;
        problem("account " + id_text(a.id) + " has flags " + std::to_string(a.flags));
      }
      if (limited && a.debits_posted + a.debits_pending > a.credits_posted) {
        c.overdrawn++;
        problem("account " + id_text(a.id) + " is overdrawn: debits " + id_text(a.debits_posted) + " + " +
                id_text(a.debits_pending) + " > credits " + id_text(a.credits_posted));
      }
    }
  }
  if (debits_posted != credits_posted || debits_pending != credits_pending) {
    c.unbalanced++;
    problem("debits posted " + id_text(debits_posted) + " != credits posted " + id_text(credits_posted) +
            " or debits pending " + id_text(debits_pending) + " != credits pending " + id_text(credits_pending));
  }
}

} // namespace

int main(int argc, char** argv) {
  std::string host, port_text;
  std::vector<std::pair<std::string, bool>> logs; // path, resend
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--address" && i + 1 < argc) {
      const std::string v = argv[++i];
      const size_t colon = v.rfind(':');
      if (colon == std::string::npos) usage("--address is HOST:PORT");
      host = v.substr(0, colon);
      port_text = v.substr(colon + 1);
    } else if (a == "--resend" && i + 1 < argc) {
      logs.emplace_back(argv[++i], true);
    } else if (!a.empty() && a[0] != '-') {
      logs.emplace_back(a, false);
    } else {
      usage("unknown argument " + a);
    }
  }
  if (host.empty() || logs.empty()) usage("needs --address and at least one log");
  if (host != "127.0.0.1" && host != "localhost" && host != "::1") usage("loopback only");

  counts c;
  try {
    client::blocking_client kassad;
    kassad.connect(host, static_cast<uint16_t>(std::stoul(port_text)));
    transfer_checker checker(kassad, c);
    uint64_t accounts_n = 0;
    for (const auto& [path, resend] : logs) {
      const log_header h = check_log(path, resend, checker);
      if (accounts_n != 0 && accounts_n != h.accounts) usage("the logs name different account counts");
      accounts_n = h.accounts;
    }
    checker.flush();
    check_accounts(kassad, accounts_n, c);
  } catch (const client::error& e) {
    std::fprintf(stderr, "acked_check: kassad at %s:%s: %s\n", host.c_str(), port_text.c_str(), e.what());
    return 3;
  }
  std::printf("acked_check: logs=%zu acked=%llu refused=%llu missing=%llu mismatched=%llu refused_present=%llu "
              "resent=%llu resent_not_exists=%llu accounts=%llu accounts_missing=%llu accounts_mismatched=%llu overdrawn=%llu "
              "unbalanced=%llu violations=%llu\n",
              logs.size(), (unsigned long long)c.acked, (unsigned long long)c.refused, (unsigned long long)c.missing,
              (unsigned long long)c.mismatched, (unsigned long long)c.refused_present, (unsigned long long)c.resent,
              (unsigned long long)c.resent_not_exists, (unsigned long long)c.accounts,
              (unsigned long long)c.accounts_missing, (unsigned long long)c.accounts_mismatched, (unsigned long long)c.overdrawn,
              (unsigned long long)c.unbalanced, (unsigned long long)c.violations());
  return c.violations() == 0 ? 0 : 1;
}
