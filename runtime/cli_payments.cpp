#include "runtime/cli_payments.hpp"

#include <algorithm>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <map>

#include "ledger/payments/gl.hpp"
#include "ledger/payments/records.hpp"
#include "ledger/store/payments_store.hpp"
#include "ledger/store/recon_store.hpp"
#include "ledger/store/voucher_store.hpp"

namespace kassa::runtime {

namespace {

namespace ks = ledger::store;
namespace pay = ledger::payments;

// As in docs/cli.md.
constexpr int exit_ok = 0;
constexpr int exit_not_found = 1;    // trace: nothing under the id
constexpr int exit_inconsistent = 1; // gl: a ledger does not balance
constexpr int exit_usage = 2;
constexpr int exit_unavailable = 3;

const char* usage_trace =
    "usage: kassa trace ID [--data DIR]\n"
    "\n"
    "Prints the payment journal of one trace id as a timeline: time (UTC), journal sequence,\n"
    "actor, step, state after it, result, amount and payment row. When ID is no trace id, it\n"
    "is taken as an order or payment row id: that row's entries and those of its pay items and\n"
    "refunds. Reads DIR/payments (default DIR ./data) read-only; kassad may be running.\n"
    "Exit status: 0 entries printed, 1 nothing recorded under ID, 2 bad usage, 3 no payments\n"
    "store in DIR.\n";

const char* usage_recon =
    "usage: kassa recon [--data DIR] [--all]\n"
    "\n"
    "Prints the open reconciliation cases (with --all also the resolved ones), then the three\n"
    "sides (statement <-> rows, rows <-> ledger, the payment core's own) with their open cases\n"
    "by kind, the counts and each provider's statement cursor. Reads DIR/recon (default DIR\n"
    "./data) read-only; kassad may be running. Exit status: 0 read, 2 bad usage, 3 no reconciliation store in DIR.\n";

const char* usage_gl =
    "usage: kassa gl [--data DIR]\n"
    "\n"
    "Prints the general-ledger totals per GL account and ledger (debits, credits, balance), a\n"
    "check that every ledger's debits equal its credits, the voucher count, and how far the\n"
    "accounting cursor is behind the payments journal. Reads DIR/accounting and DIR/payments\n"
    "(default DIR ./data) read-only; kassad may be running. Exit status: 0 read and balanced,\n"
    "1 a ledger does not balance, 2 bad usage, 3 no accounting store in DIR.\n";

std::string utc(uint64_t ns) {
  if (ns == 0) return "-";
  const time_t secs = time_t(ns / 1000000000u);
  struct tm tm;
  gmtime_r(&secs, &tm);
  char buf[64];
  const size_t n = std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  std::snprintf(buf + n, sizeof buf - n, ".%06uZ", unsigned((ns % 1000000000u) / 1000u));
  return buf;
}

std::string hex(u128 v) { return "0x" + to_hex_u128(v, 32); }

std::string field(const char* p, size_t n) { return std::string(p, strnlen(p, n)); }

// Parses `--data DIR` and the flags in `flags` (set to true when present); false on anything
// else, with the message printed.
bool parse(const char* cmd, const char* usage, const std::vector<std::string>& args, std::string& data_dir,
           std::vector<std::string>& positional, std::map<std::string, bool>& flags) {
  data_dir = "./data";
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a == "--data" && i + 1 < args.size()) {
      data_dir = args[++i];
    } else if (a.rfind("--data=", 0) == 0) {
      data_dir = a.substr(7);
    } else if (flags.count(a) != 0) {
      flags[a] = true;
    } else if (a.rfind("--", 0) != 0) {
      positional.push_back(a);
    } else {
      std::fprintf(stderr, "kassa %s: unknown or incomplete argument '%s'\n\n%s", cmd, a.c_str(), usage);
      return false;
    }
  }
  return true;
}

bool wants_help(const std::vector<std::string>& args) {
  return std::any_of(args.begin(), args.end(), [](const std::string& a) { return a == "--help" || a == "-h"; });
}

std::string sub(const std::string& dir, const char* name) { return (std::filesystem::path(dir) / name).string(); }

int cmd_trace(const std::vector<std::string>& args) {
  std::string data_dir;
  std::vector<std::string> positional;
  std::map<std::string, bool> flags;
  if (!parse("trace", usage_trace, args, data_dir, positional, flags)) return exit_usage;
  u128 id = 0;
  if (positional.size() != 1 || !parse_u128(positional[0], id) || id == 0) {
    std::fprintf(stderr, "kassa trace: one ID (decimal or 0x-hex, not 0) is required\n\n%s", usage_trace);
    return exit_usage;
  }
  ks::error err;
  auto store = ks::payments_store::open_read_only(sub(data_dir, "payments"), err);
  if (!store) {
    std::fprintf(stderr, "kassa trace: %s\n", err.message.c_str());
    return exit_unavailable;
  }
  std::vector<ks::journal_entry> entries;
  const char* as = "trace";
  err = store->journal_by_trace(id, entries);
  if (err.ok() && entries.empty()) {
    as = "row";
    err = store->journal_by_row(id, entries);
    std::vector<pay::order> children;
    if (err.ok()) err = store->children(id, children);
    for (size_t i = 0; err.ok() && i < children.size(); ++i) err = store->journal_by_row(children[i].id, entries);
    std::sort(entries.begin(), entries.end(),
              [](const ks::journal_entry& a, const ks::journal_entry& b) { return a.sequence < b.sequence; });
  }
  if (!err.ok()) {
    std::fprintf(stderr, "kassa trace: %s\n", err.message.c_str());
    return exit_unavailable;
  }
  if (entries.empty()) {
    std::fprintf(stderr, "kassa trace: nothing recorded under %s (neither a trace nor a payment row)\n",
                 positional[0].c_str());
    return exit_not_found;
  }
  std::printf("%s %s: %zu journal entries\n", as, positional[0].c_str(), entries.size());
  std::printf("%-27s %8s  %-16s %-16s %-18s %-22s %12s  %s\n", "time", "seq", "actor", "step", "state", "result",
              "amount", "row");
  for (const ks::journal_entry& e : entries) {
    std::printf("%-27s %8llu  %-16s %-16s %-18s %-22s %12s  %s\n", utc(e.timestamp_ns).c_str(),
                (unsigned long long)e.sequence, field(e.actor, sizeof e.actor).c_str(),
                field(e.step, sizeof e.step).c_str(),
                std::string(pay::name(static_cast<pay::order_state>(e.state))).c_str(),
                std::string(pay::name(static_cast<pay::payment_result>(e.result))).c_str(),
                to_string_u128(e.amount).c_str(), to_string_u128(e.row_id).c_str());
  }
  return exit_ok;
}

int cmd_recon(const std::vector<std::string>& args) {
  std::string data_dir;
  std::vector<std::string> positional;
  std::map<std::string, bool> flags{{"--all", false}};
  if (!parse("recon", usage_recon, args, data_dir, positional, flags)) return exit_usage;
  if (!positional.empty()) {
    std::fprintf(stderr, "kassa recon: unexpected argument '%s'\n\n%s", positional[0].c_str(), usage_recon);
    return exit_usage;
  }
  ks::error err;
  auto store = ks::recon_store::open_read_only(sub(data_dir, "recon"), err);
  if (!store) {
    std::fprintf(stderr, "kassa recon: %s\n", err.message.c_str());
    return exit_unavailable;
  }
  std::vector<ks::recon_case> cases;
  ks::recon_counters counters;
  std::map<std::string, uint64_t> cursors;
  if ((err = store->load_cases(!flags["--all"], cases)).ok() && (err = store->read_counters(counters)).ok())
    err = store->load_cursors(cursors);
  if (!err.ok()) {
    std::fprintf(stderr, "kassa recon: %s\n", err.message.c_str());
    return exit_unavailable;
  }
  print_case_table(cases);
  // The three sides and the differences between them, by kind.
  std::map<ks::case_kind, uint64_t> open_of;
  for (const ks::recon_case& c : cases)
    if (c.status == static_cast<uint8_t>(ks::case_status::open)) ++open_of[static_cast<ks::case_kind>(c.kind)];
  auto counts = [&open_of](std::initializer_list<ks::case_kind> kinds) {
    std::string out;
    for (ks::case_kind k : kinds)
      out += (out.empty() ? "" : ", ") + std::string(ks::name(k)) + " " + std::to_string(open_of[k]);
    return out;
  };
  std::printf("statement <-> rows: statement lines matched %llu; open cases: %s\n",
              (unsigned long long)counters.matched,
              counts({ks::case_kind::missing_internal, ks::case_kind::missing_provider, ks::case_kind::amount_mismatch})
                  .c_str());
  std::printf("rows <-> ledger: rows checked %llu; open cases: %s\n", (unsigned long long)counters.booking_rows_checked,
              counts({ks::case_kind::missing_booking, ks::case_kind::booking_amount_mismatch,
                      ks::case_kind::row_status_mismatch, ks::case_kind::booking_without_row})
                  .c_str());
  std::printf("payment core: open cases: %s\n", counts({ks::case_kind::suspense}).c_str());
  std::printf("cases open %llu, total %llu; statement lines matched %llu\n", (unsigned long long)counters.cases_open,
              (unsigned long long)counters.cases_total, (unsigned long long)counters.matched);
  for (const auto& [provider, cursor] : cursors)
    std::printf("provider %s: statement read up to line %llu\n", provider.c_str(), (unsigned long long)cursor);
  return exit_ok;
}

int cmd_gl(const std::vector<std::string>& args) {
  std::string data_dir;
  std::vector<std::string> positional;
  std::map<std::string, bool> flags;
  if (!parse("gl", usage_gl, args, data_dir, positional, flags)) return exit_usage;
  if (!positional.empty()) {
    std::fprintf(stderr, "kassa gl: unexpected argument '%s'\n\n%s", positional[0].c_str(), usage_gl);
    return exit_usage;
  }
  ks::error err;
  auto store = ks::voucher_store::open_read_only(sub(data_dir, "accounting"), err);
  if (!store) {
    std::fprintf(stderr, "kassa gl: %s\n", err.message.c_str());
    return exit_unavailable;
  }
  std::vector<ks::gl_total> totals;
  uint64_t cursor = 0, vouchers = 0, recon_cursor = 0;
  if (!(err = store->load_totals(totals, &cursor, &vouchers, &recon_cursor)).ok()) {
    std::fprintf(stderr, "kassa gl: %s\n", err.message.c_str());
    return exit_unavailable;
  }
  std::printf("%-6s %-20s %8s %24s %24s  %s\n", "gl", "account", "ledger", "debits", "credits", "balance");
  std::map<uint32_t, std::pair<u128, u128>> per_ledger;
  bool overflow = false;
  for (const ks::gl_total& t : totals) {
    const bool debit_side = t.debits >= t.credits;
    const std::string balance =
        (debit_side ? "Dr " : "Cr ") + to_string_u128(debit_side ? t.debits - t.credits : t.credits - t.debits);
    std::printf("%-6u %-20s %8u %24s %24s  %s\n", unsigned(t.account),
                std::string(pay::name(static_cast<pay::gl_account>(t.account))).c_str(), t.ledger,
                to_string_u128(t.debits).c_str(), to_string_u128(t.credits).c_str(), balance.c_str());
    auto& [dr, cr] = per_ledger[t.ledger];
    overflow |= !add_checked(dr, t.debits, dr) || !add_checked(cr, t.credits, cr);
  }
  bool balanced = !overflow;
  for (const auto& [ledger, dc] : per_ledger) {
    const bool ok = dc.first == dc.second;
    balanced &= ok;
    std::printf("ledger %u: debits %s, credits %s: %s\n", ledger, to_string_u128(dc.first).c_str(),
                to_string_u128(dc.second).c_str(), ok ? "balanced" : "NOT BALANCED");
  }
  std::printf("vouchers %llu; accounted up to journal entry %llu", (unsigned long long)vouchers,
              (unsigned long long)cursor);
  auto payments = ks::payments_store::open_read_only(sub(data_dir, "payments"), err);
  if (payments) {
    const uint64_t last = payments->journal_last();
    std::printf(" of %llu (behind by %llu)\n", (unsigned long long)last,
                (unsigned long long)(last > cursor ? last - cursor : 0));
  } else {
    std::printf(" (the payments journal cannot be read: %s)\n", err.message.c_str());
  }
  // Corrections of resolved cases: only when reconciliation keeps a store.
  std::error_code ec;
  if (std::filesystem::exists(sub(data_dir, "recon") + "/data.mdb", ec)) {
    ks::recon_counters counters;
    auto recon = ks::recon_store::open_read_only(sub(data_dir, "recon"), err);
    if (recon && (err = recon->read_counters(counters)).ok()) {
      const uint64_t last = counters.resolution_sequence_last;
      std::printf("accounted up to case resolution %llu of %llu (resolutions behind by %llu)\n",
                  (unsigned long long)recon_cursor, (unsigned long long)last,
                  (unsigned long long)(last > recon_cursor ? last - recon_cursor : 0));
    } else {
      std::printf("accounted up to case resolution %llu (the case resolutions cannot be read: %s)\n",
                  (unsigned long long)recon_cursor, err.message.c_str());
    }
  }
  return balanced ? exit_ok : exit_inconsistent;
}

} // namespace

void print_case_table(const std::vector<ledger::store::recon_case>& cases) {
  std::printf("%6s  %-16s %-8s %-27s %-10s %-36s %8s %12s %12s %6s %8s  %s\n", "id", "kind", "status", "opened",
              "provider", "payment_id", "ledger", "internal", "provider_amt", "stmt", "row", "trace");
  for (const ks::recon_case& c : cases) {
    std::printf("%6llu  %-16s %-8s %-27s %-10s %-36s %8u %12s %12s %6llu %8s  %s\n", (unsigned long long)c.id,
                std::string(ks::name(static_cast<ks::case_kind>(c.kind))).c_str(),
                std::string(ks::name(static_cast<ks::case_status>(c.status))).c_str(), utc(c.opened_ns).c_str(),
                field(c.provider, sizeof c.provider).c_str(), hex(c.payment_id).c_str(), c.ledger,
                to_string_u128(c.internal_amount).c_str(), to_string_u128(c.provider_amount).c_str(),
                (unsigned long long)c.statement_sequence, to_string_u128(c.row_id).c_str(),
                to_string_u128(c.trace_id).c_str());
  }
}

std::string utc_text(uint64_t ns) { return utc(ns); }

bool is_payments_reader_command(const std::string& cmd) { return cmd == "trace" || cmd == "recon" || cmd == "gl"; }

std::string payments_reader_usage(const std::string& cmd) {
  if (cmd == "trace") return usage_trace;
  if (cmd == "recon") return usage_recon;
  return usage_gl;
}

int run_payments_reader_command(const std::string& cmd, const std::vector<std::string>& args) {
  if (wants_help(args)) {
    std::fputs(payments_reader_usage(cmd).c_str(), stdout);
    return exit_ok;
  }
  if (cmd == "trace") return cmd_trace(args);
  if (cmd == "recon") return cmd_recon(args);
  return cmd_gl(args);
}

} // namespace kassa::runtime
