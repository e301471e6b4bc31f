#include "ledger/store/verify.hpp"

#include <lmdb.h>

#include <algorithm>
#include <boost/multiprecision/cpp_int.hpp>
#include <map>
#include <unordered_map>

#include "ledger/state_machine.hpp" // u128_hash
#include "ledger/store/layout.hpp"
#include "ledger/store/replay.hpp"
#include "ledger/system_ids.hpp"
#include "ledger/types.hpp"
#include "primitives/crc32c.hpp"
#include "primitives/lmdb.hpp"

namespace kassa::ledger::store {
namespace {

using namespace layout;
using boost::multiprecision::uint256_t;

uint256_t wide(u128 v) { return (uint256_t(u128_hi(v)) << 64) | uint256_t(u128_lo(v)); }
std::string str(u128 v) { return to_string_u128(v); }
std::string str(const uint256_t& v) { return v.str(); }

struct totals {
  uint256_t debits_pending, debits_posted, credits_pending, credits_posted;
};

struct account_check {
  account row;
  totals replayed;
};

struct id_ts {
  u128 id;
  uint64_t ts;
  bool operator<(const id_ts& o) const { return id != o.id ? id < o.id : ts < o.ts; }
  bool operator==(const id_ts& o) const { return id == o.id && ts == o.ts; }
};

template <class Report> class basic_checker {
public:
  explicit basic_checker(Report& r) : r_(r) {}
  void problem(std::string line) {
    ++r_.problems_total;
    if (r_.problems.size() < verify_problems_max) r_.problems.push_back(std::move(line));
  }

private:
  Report& r_;
};
using checker = basic_checker<verify_report>;

struct env_guard {
  MDB_env* env = nullptr;
  MDB_txn* txn = nullptr;
  ~env_guard() {
    if (txn) mdb_txn_abort(txn);
    if (env) mdb_env_close(env);
  }
};

// Iterates a whole table in key order; `f(key, value)`. Returns the LMDB code (0 at the end).
template <class F> int scan(MDB_txn* txn, MDB_dbi dbi, F&& f) {
  return lmdb::for_each(txn, dbi, [&f](const MDB_val& k, const MDB_val& v) {
    f(k, v);
    return lmdb::scan_next;
  });
}

const uint8_t* bytes(const MDB_val& v) { return static_cast<const uint8_t*>(v.mv_data); }

// Compares two sorted sequences of (id, ts) pairs: `expected` (derived from the transfers)
// against `stored` (an index table), naming the first differences.
void compare_sorted(checker& c, const char* table, const std::vector<id_ts>& expected,
                    const std::vector<id_ts>& stored) {
  size_t i = 0, j = 0;
  while (i < expected.size() || j < stored.size()) {
    if (j == stored.size() || (i < expected.size() && expected[i] < stored[j])) {
      c.problem(std::string(table) + ": missing row (" + str(expected[i].id) + ", " +
                std::to_string(expected[i].ts) + ")");
      ++i;
    } else if (i == expected.size() || stored[j] < expected[i]) {
      c.problem(std::string(table) + ": row (" + str(stored[j].id) + ", " +
                std::to_string(stored[j].ts) + ") matches no transfer");
      ++j;
    } else {
      ++i;
      ++j;
    }
  }
}

// One read-only pass over a stopped store, one method per invariant. Each method reads what
// the earlier ones gathered (the meta values, the accounts, the pending rows, the journal, the
// transfer ids) and adds its problems to the report.
class verifier {
public:
  verifier(verify_report& r, const std::string& path) : r_(r), c_(r), path_(path) {}

  // Opens the store read-only and every table; false (with a problem) when it cannot.
  bool open() {
    int rc = lmdb::env_open(g_.env, path_, MDB_RDONLY | MDB_NOTLS, dbi_count + 1, 0, 0);
    if (rc == 0) rc = mdb_txn_begin(g_.env, nullptr, MDB_RDONLY, &g_.txn);
    if (rc != 0) {
      c_.problem("cannot open store " + path_ + ": " + mdb_strerror(rc));
      return false;
    }
    txn_ = g_.txn;
    struct {
      const char* name;
      MDB_dbi* dbi;
    } dbis[] = {{dbi_meta, &meta_},
                {dbi_accounts, &accounts_},
                {dbi_transfers, &transfers_},
                {dbi_transfer_ids, &transfer_ids_},
                {dbi_pending, &pending_},
                {dbi_expiry, &expiry_},
                {dbi_history, &history_},
                {dbi_account_transfers, &account_transfers_},
                {dbi_journal, &journal_},
                {dbi_expirations, &expirations_}};
    for (auto& d : dbis) {
      if ((rc = mdb_dbi_open(txn_, d.name, 0, d.dbi)) != 0)
        c_.problem(std::string("table ") + d.name + " is missing: " + mdb_strerror(rc));
    }
    return r_.problems_total == 0;
  }

  // The meta values every other check reads; false when the format is not this verify's.
  bool meta() {
    std::map<std::string, uint64_t> m;
    scan_failed("meta", scan(txn_, meta_, [&](const MDB_val& k, const MDB_val& v) {
      uint64_t value = 0;
      if (v.mv_size == 8) std::memcpy(&value, v.mv_data, 8);
      else c_.problem("meta: value of " + std::string(static_cast<const char*>(k.mv_data), k.mv_size) + " is not 8 bytes");
      m[std::string(static_cast<const char*>(k.mv_data), k.mv_size)] = value;
    }));
    for (const char* key : {meta_format_version, meta_commit_sequence, meta_timestamp_last,
                            meta_transfer_timestamp_last, meta_accounts_checkpoint_timestamp,
                            meta_account_transfers_indexed}) {
      if (!m.count(key)) c_.problem(std::string("meta: ") + key + " is missing");
    }
    if (m.count(meta_format_version) && m[meta_format_version] != format_version) {
      c_.problem("meta: format version " + std::to_string(m[meta_format_version]) +
                 ", this verify reads " + std::to_string(format_version));
      return false;
    }
    sequence_meta_ = m[meta_commit_sequence];
    timestamp_last_ = m[meta_timestamp_last];
    transfer_timestamp_last_ = m[meta_transfer_timestamp_last];
    checkpoint_timestamp_ = m[meta_accounts_checkpoint_timestamp];
    indexed_ = m[meta_account_transfers_indexed];
    if (checkpoint_timestamp_ > timestamp_last_)
      c_.problem("meta: accounts_checkpoint_timestamp " + std::to_string(checkpoint_timestamp_) +
                 " lies after timestamp_last " + std::to_string(timestamp_last_));
    if (indexed_ > transfer_timestamp_last_)
      c_.problem("meta: account_transfers_indexed " + std::to_string(indexed_) +
                 " lies after transfer_timestamp_last " + std::to_string(transfer_timestamp_last_));
    return true;
  }

  // Every account row: keyed by its id, stamped within (0, timestamp_last].
  void accounts() {
    scan_failed("accounts", scan(txn_, accounts_, [&](const MDB_val& k, const MDB_val& v) {
      if (k.mv_size != 16 || v.mv_size != sizeof(account)) {
        c_.problem("accounts: a row has key size " + std::to_string(k.mv_size) + " and value size " +
                   std::to_string(v.mv_size));
        return;
      }
      account a;
      std::memcpy(&a, v.mv_data, sizeof a);
      u128 key = get_be128(bytes(k));
      if (a.id != key) c_.problem("accounts: row under key " + str(key) + " holds account " + str(a.id));
      if (a.timestamp == 0 || a.timestamp > timestamp_last_)
        c_.problem("accounts: account " + str(a.id) + " has timestamp " + std::to_string(a.timestamp) +
                   " outside (0, timestamp_last " + std::to_string(timestamp_last_) + "]");
      accts_[key] = account_check{a, {}};
    }));
    r_.accounts = accts_.size();
  }

  // Every pending row has a known status; the expiry index holds exactly the pending
  // transfers with a deadline.
  void pending_and_expiry() {
    scan_failed("pending", scan(txn_, pending_, [&](const MDB_val& k, const MDB_val& v) {
      if (k.mv_size != 16 || v.mv_size != sizeof(pending_row)) {
        c_.problem("pending: a row has a bad size");
        return;
      }
      pending_row row;
      std::memcpy(&row, v.mv_data, sizeof row);
      if (row.status < uint8_t(pending_status::pending) || row.status > uint8_t(pending_status::expired))
        c_.problem("pending: transfer " + str(get_be128(bytes(k))) + " has unknown status " +
                   std::to_string(row.status));
      pend_[get_be128(bytes(k))] = row;
    }));
    uint64_t expiry_expected = 0;
    for (const auto& [id, row] : pend_) {
      if (row.status == uint8_t(pending_status::pending)) {
        ++r_.pending;
        if (row.expires_at_ns != 0) ++expiry_expected;
      }
    }
    uint64_t expiry_rows = 0;
    scan_failed("expiry", scan(txn_, expiry_, [&](const MDB_val& k, const MDB_val& v) {
      ++expiry_rows;
      if (k.mv_size != 24 || v.mv_size != 0) {
        c_.problem("expiry: a row has a bad size");
        return;
      }
      uint64_t at = get_be64(bytes(k));
      u128 id = get_be128(bytes(k) + 8);
      auto it = pend_.find(id);
      if (it == pend_.end() || it->second.status != uint8_t(pending_status::pending) ||
          it->second.expires_at_ns != at)
        c_.problem("expiry: row (" + std::to_string(at) + ", " + str(id) +
                   ") matches no pending transfer with that deadline");
    }));
    if (expiry_rows != expiry_expected)
      c_.problem("expiry: " + std::to_string(expiry_rows) + " rows but " +
                 std::to_string(expiry_expected) + " pending transfers have a deadline");
  }

  // The journal: sequences 1..n without a gap, timestamps never going back, and its end
  // agreeing with the meta values.
  void journal() {
    scan_failed("journal", scan(txn_, journal_, [&](const MDB_val& k, const MDB_val& v) {
      if (k.mv_size != 8 || v.mv_size != sizeof(journal_entry)) {
        c_.problem("journal: an entry has a bad size");
        return;
      }
      journal_entry je;
      std::memcpy(&je, v.mv_data, sizeof je);
      uint64_t key = get_be64(bytes(k));
      if (je.sequence != key || key != entries_.size() + 1)
        c_.problem("journal: entry under key " + std::to_string(key) + " has sequence " +
                   std::to_string(je.sequence) + ", expected " + std::to_string(entries_.size() + 1));
      if (!entries_.empty() && je.timestamp_last < entries_.back().timestamp_last)
        c_.problem("journal: timestamp_last goes backwards at sequence " + std::to_string(key));
      entries_.push_back(je);
    }));
    r_.commits = entries_.size();
    if (entries_.size() != sequence_meta_)
      c_.problem("journal: " + std::to_string(entries_.size()) + " entries but meta.commit_sequence is " +
                 std::to_string(sequence_meta_));
    if (!entries_.empty() && entries_.back().timestamp_last != timestamp_last_)
      c_.problem("journal: last entry has timestamp_last " + std::to_string(entries_.back().timestamp_last) +
                 " but meta says " + std::to_string(timestamp_last_));
  }

  // Every transfer, in timestamp order: covered by its journal entry (count and CRC-32C),
  // naming stored accounts of its ledger, its pending row agreeing; adds it to the totals its
  // accounts must hold.
  void transfers() {
    next_entry_with_transfers();
    scan_failed("transfers", scan(txn_, transfers_, [&](const MDB_val& k, const MDB_val& v) {
      if (k.mv_size != 8 || v.mv_size != sizeof(transfer)) {
        c_.problem("transfers: a row has a bad size");
        return;
      }
      transfer t;
      std::memcpy(&t, v.mv_data, sizeof t);
      uint64_t ts = get_be64(bytes(k));
      if (t.timestamp != ts)
        c_.problem("transfers: row under timestamp " + std::to_string(ts) + " holds timestamp " +
                   std::to_string(t.timestamp));
      ++r_.transfers;
      newest_transfer_ = ts;
      journal_coverage(ts, t);
      ids_expected_.push_back({t.id, ts});
      if (ts <= indexed_) { // later transfers wait for the next bulk index
        account_transfers_expected_.push_back({t.debit_account_id, ts});
        account_transfers_expected_.push_back({t.credit_account_id, ts});
      }
      add_to_totals(t);
    }));
    while (entry_ < entries_.size()) close_entry();
    if (r_.transfers != 0 && newest_transfer_ != transfer_timestamp_last_)
      c_.problem("meta: transfer_timestamp_last is " + std::to_string(transfer_timestamp_last_) +
                 " but the newest transfer has " + std::to_string(newest_transfer_));
    if (r_.transfers == 0 && transfer_timestamp_last_ != 0)
      c_.problem("meta: transfer_timestamp_last is set but there are no transfers");
    if (pending_flagged_ != pend_.size())
      c_.problem("pending: " + std::to_string(pend_.size()) + " rows but " +
                 std::to_string(pending_flagged_) + " pending transfers");
  }

  // transfer_ids against the transfers; no id stored twice.
  void transfer_ids() {
    std::vector<id_ts> stored;
    stored.reserve(ids_expected_.size());
    scan_failed("transfer_ids", scan(txn_, transfer_ids_, [&](const MDB_val& k, const MDB_val& v) {
      if (k.mv_size != 16 || v.mv_size != 8) {
        c_.problem("transfer_ids: a row has a bad size");
        return;
      }
      uint64_t ts;
      std::memcpy(&ts, v.mv_data, 8);
      stored.push_back({get_be128(bytes(k)), ts});
    }));
    std::sort(ids_expected_.begin(), ids_expected_.end());
    for (size_t i = 1; i < ids_expected_.size(); ++i) {
      if (ids_expected_[i].id == ids_expected_[i - 1].id)
        c_.problem("transfers: id " + str(ids_expected_[i].id) + " is stored twice");
    }
    compare_sorted(c_, "transfer_ids", ids_expected_, stored);
  }

  // expirations: one per expired pending transfer, stamped after it.
  void expirations() {
    uint64_t expired_rows = 0, expirations_rows = 0;
    for (const auto& [id, row] : pend_) expired_rows += row.status == uint8_t(pending_status::expired);
    scan_failed("expirations", scan(txn_, expirations_, [&](const MDB_val& k, const MDB_val& v) {
      ++expirations_rows;
      if (k.mv_size != 24 || v.mv_size != 0) {
        c_.problem("expirations: a row has a bad size");
        return;
      }
      const uint64_t stamp = get_be64(bytes(k));
      const u128 id = get_be128(bytes(k) + 8);
      auto it = pend_.find(id);
      transfer p;
      if (it == pend_.end() || it->second.status != uint8_t(pending_status::expired)) {
        c_.problem("expirations: row (" + std::to_string(stamp) + ", " + str(id) +
                   ") names no expired pending transfer");
      } else if (!find_transfer(id, p) || stamp <= p.timestamp || stamp > timestamp_last_) {
        c_.problem("expirations: row (" + std::to_string(stamp) + ", " + str(id) +
                   ") is not stamped after its pending transfer and by timestamp_last");
      }
    }));
    if (expirations_rows != expired_rows)
      c_.problem("expirations: " + std::to_string(expirations_rows) + " rows but " +
                 std::to_string(expired_rows) + " pending rows say expired");
  }

  // The account rows brought forward: recovery's own replay (replay.hpp) of the journal after
  // the checkpoint, applied to the stored rows. The result must equal the totals the whole
  // journal adds up to, checked by balances().
  void bring_rows_forward() {
    current_.reserve(accts_.size());
    for (const auto& [id, a] : accts_) current_.emplace(id, a.row);
    auto find_account = [&](u128 id) -> account* {
      auto it = current_.find(id);
      return it == current_.end() ? nullptr : &it->second; // reported with the full replay
    };
    auto find = [this](u128 id, transfer& out) { return find_transfer(id, out); };
    uint64_t replayed = 0;
    int rc = replay::walk(
        txn_, transfers_, expirations_, checkpoint_timestamp_,
        [&](const transfer& t) {
          ++replayed;
          std::string p = replay::apply_transfer(t, find_account, find);
          if (!p.empty()) c_.problem("replay after the checkpoint: " + p);
          return true;
        },
        [&](uint64_t, u128 id) {
          std::string p = replay::apply_expiration(id, find_account, find);
          if (!p.empty()) c_.problem("replay after the checkpoint: " + p);
          return true;
        });
    if (rc != 0) c_.problem(std::string("replay after the checkpoint failed: ") + mdb_strerror(rc));
    r_.replayed = replayed;
    ids_expected_ = {};
  }

  // account_transfers against the transfers indexed so far.
  void account_transfers() {
    std::vector<id_ts> stored;
    stored.reserve(account_transfers_expected_.size());
    scan_failed("account_transfers", scan(txn_, account_transfers_, [&](const MDB_val& k, const MDB_val& v) {
      if (k.mv_size != 16 || v.mv_size != 8) {
        c_.problem("account_transfers: an entry has a bad size");
        return;
      }
      stored.push_back({get_be128(bytes(k)), get_be64(bytes(v))});
    }));
    std::sort(account_transfers_expected_.begin(), account_transfers_expected_.end());
    compare_sorted(c_, "account_transfers", account_transfers_expected_, stored);
  }

  // history: rows only for accounts with the history flag, within (0, timestamp_last].
  void history() {
    scan_failed("history", scan(txn_, history_, [&](const MDB_val& k, const MDB_val& v) {
      if (k.mv_size != 24 || v.mv_size != sizeof(account_balance)) {
        c_.problem("history: a row has a bad size");
        return;
      }
      u128 id = get_be128(bytes(k));
      uint64_t ts = get_be64(bytes(k) + 16);
      auto it = accts_.find(id);
      if (it == accts_.end() || !has(it->second.row.flags, account_history))
        c_.problem("history: row for account " + str(id) + ", which lacks the history flag");
      // Expiry records history too, at a timestamp of its own: no transfer to match.
      if (ts == 0 || ts > timestamp_last_)
        c_.problem("history: row for account " + str(id) + " at " + std::to_string(ts) +
                   " lies outside (0, timestamp_last]");
    }));
  }

  // Every account's totals (brought forward) equal what its transfers add up to; per ledger,
  // debits equal credits, posted and pending. Collects the clearing accounts.
  void balances() {
    std::map<uint32_t, totals> ledgers;
    for (const auto& [id, a] : accts_) {
      const account& row = current_.at(id);
      totals& l = ledgers[row.ledger];
      l.debits_pending += wide(row.debits_pending);
      l.debits_posted += wide(row.debits_posted);
      l.credits_pending += wide(row.credits_pending);
      l.credits_posted += wide(row.credits_posted);
      const totals& t = a.replayed;
      // (a structured binding is named through an init-capture: C++17 lambdas cannot capture one)
      auto check = [&, id = id](const char* field, u128 stored, const uint256_t& replayed) {
        if (wide(stored) != replayed)
          c_.problem("accounts: account " + str(id) + " has " + field + " " + str(stored) +
                     " but its transfers add up to " + str(replayed));
      };
      check("debits_pending", row.debits_pending, t.debits_pending);
      check("debits_posted", row.debits_posted, t.debits_posted);
      check("credits_pending", row.credits_pending, t.credits_pending);
      check("credits_posted", row.credits_posted, t.credits_posted);
    }
    for (const auto& [ledger, l] : ledgers) {
      if (l.debits_posted != l.credits_posted)
        c_.problem("ledger " + std::to_string(ledger) + ": debits_posted " + str(l.debits_posted) +
                   " != credits_posted " + str(l.credits_posted));
      if (l.debits_pending != l.credits_pending)
        c_.problem("ledger " + std::to_string(ledger) + ": debits_pending " + str(l.debits_pending) +
                   " != credits_pending " + str(l.credits_pending));
    }
    r_.ledgers = ledgers.size();
    for (const auto& [id, row] : current_) {
      if (system_ids::is_clearing(id)) r_.clearing.push_back(row);
    }
    std::sort(r_.clearing.begin(), r_.clearing.end(),
              [](const account& a, const account& b) { return a.id < b.id; });
  }

  verify_report finish() {
    r_.consistent = r_.problems_total == 0;
    if (r_.consistent) {
      r_.summary = "verify: consistent: " + std::to_string(r_.ledgers) + " ledgers, " +
                   std::to_string(r_.accounts) + " accounts, " + std::to_string(r_.transfers) +
                   " transfers, " + std::to_string(r_.pending) + " pending, journal " +
                   std::to_string(r_.commits) + " commits, " + std::to_string(r_.replayed) +
                   " transfers after the account checkpoint";
    } else {
      r_.summary = "verify: INCONSISTENT: " + std::to_string(r_.problems_total) + " problem" +
                   (r_.problems_total == 1 ? "" : "s") + " in " + path_;
    }
    return std::move(r_);
  }

private:
  void scan_failed(const char* table, int code) {
    if (code != 0) c_.problem(std::string("reading ") + table + " failed: " + mdb_strerror(code));
  }

  // Journal coverage: each commit's range holds exactly its transfers, with their CRC.
  void next_entry_with_transfers() {
    while (entry_ < entries_.size() && entries_[entry_].transfers_created == 0) ++entry_;
  }
  void close_entry() {
    const journal_entry& je = entries_[entry_];
    if (entry_count_ != je.transfers_created || entry_crc_ != je.transfers_crc32c)
      c_.problem("journal: commit " + std::to_string(je.sequence) + " lists " +
                 std::to_string(je.transfers_created) + " transfers, found " +
                 std::to_string(entry_count_) + (entry_crc_ != je.transfers_crc32c ? " and the CRC-32C differs" : ""));
    ++entry_;
    entry_crc_ = 0;
    entry_count_ = 0;
    next_entry_with_transfers();
  }
  void journal_coverage(uint64_t ts, const transfer& t) {
    while (entry_ < entries_.size() && ts > entries_[entry_].transfer_timestamp_max) close_entry();
    if (entry_ == entries_.size() || ts < entries_[entry_].transfer_timestamp_min) {
      c_.problem("transfers: transfer at " + std::to_string(ts) + " belongs to no journal entry");
    } else {
      entry_crc_ = crc32c_extend(entry_crc_, &t, sizeof t);
      ++entry_count_;
    }
  }

  account_check* side(u128 id, const transfer& t) {
    auto it = accts_.find(id);
    if (it == accts_.end()) {
      c_.problem("transfers: transfer " + str(t.id) + " names account " + str(id) + ", which is not stored");
      return nullptr;
    }
    if (it->second.row.ledger != t.ledger)
      c_.problem("transfers: transfer " + str(t.id) + " has ledger " + std::to_string(t.ledger) +
                 " but account " + str(id) + " has ledger " + std::to_string(it->second.row.ledger));
    return &it->second;
  }

  void resolved_status(const transfer& t, pending_status want) {
    auto it = pend_.find(t.pending_id);
    if (it == pend_.end() || it->second.status != uint8_t(want))
      c_.problem("transfers: transfer " + str(t.id) + " resolves pending transfer " +
                 str(t.pending_id) + ", whose pending row does not say so");
  }

  // What `t` adds to its accounts' totals; a pending transfer only while it is still pending.
  void add_to_totals(const transfer& t) {
    account_check* dr = side(t.debit_account_id, t);
    account_check* cr = side(t.credit_account_id, t);
    if (t.debit_account_id == t.credit_account_id)
      c_.problem("transfers: transfer " + str(t.id) + " debits and credits the same account");
    const uint256_t amount = wide(t.amount);
    if (has(t.flags, transfer_pending)) {
      ++pending_flagged_;
      auto it = pend_.find(t.id);
      if (it == pend_.end()) {
        c_.problem("pending: pending transfer " + str(t.id) + " has no pending row");
      } else if (it->second.status == uint8_t(pending_status::pending) && dr && cr) {
        dr->replayed.debits_pending += amount;
        cr->replayed.credits_pending += amount;
      }
    } else if (has(t.flags, transfer_void_pending)) {
      resolved_status(t, pending_status::voided);
    } else {
      if (has(t.flags, transfer_post_pending)) resolved_status(t, pending_status::posted);
      if (dr && cr) {
        dr->replayed.debits_posted += amount;
        cr->replayed.credits_posted += amount;
      }
    }
  }

  // A transfer by id, from the transfers table itself (not through transfer_ids); needs
  // transfer_ids() to have sorted the ids.
  bool find_transfer(u128 id, transfer& out) {
    auto it = std::lower_bound(ids_expected_.begin(), ids_expected_.end(), id_ts{id, 0});
    if (it == ids_expected_.end() || it->id != id) return false;
    key_u64 key(it->ts);
    MDB_val k{sizeof key, &key}, v;
    if (mdb_get(txn_, transfers_, &k, &v) != 0 || v.mv_size != sizeof(transfer)) return false;
    std::memcpy(&out, v.mv_data, sizeof out);
    return true;
  }

  verify_report& r_;
  checker c_;
  std::string path_;
  env_guard g_;
  MDB_txn* txn_ = nullptr;
  MDB_dbi meta_ = 0, accounts_ = 0, transfers_ = 0, transfer_ids_ = 0, pending_ = 0, expiry_ = 0,
          history_ = 0, account_transfers_ = 0, journal_ = 0, expirations_ = 0;
  uint64_t sequence_meta_ = 0, timestamp_last_ = 0, transfer_timestamp_last_ = 0,
           checkpoint_timestamp_ = 0, indexed_ = 0;
  std::unordered_map<u128, account_check, u128_hash> accts_;
  std::unordered_map<u128, pending_row, u128_hash> pend_;
  std::vector<journal_entry> entries_;
  // the transfers' walk
  size_t entry_ = 0; // the journal entry the next transfer must belong to
  uint32_t entry_crc_ = 0, entry_count_ = 0;
  uint64_t pending_flagged_ = 0, newest_transfer_ = 0;
  std::vector<id_ts> ids_expected_, account_transfers_expected_;
  std::unordered_map<u128, account, u128_hash> current_;
};

} // namespace

verify_report verify(const std::string& path) {
  verify_report r;
  verifier v(r, path);
  if (!v.open() || !v.meta()) return v.finish();
  v.accounts();
  v.pending_and_expiry();
  v.journal();
  v.transfers();
  v.transfer_ids();
  v.expirations();
  v.bring_rows_forward();
  v.account_transfers();
  v.history();
  v.balances();
  return v.finish();
}

cross_shard_report verify_clearing(const std::map<uint32_t, std::vector<account>>& clearing,
                                   uint64_t sagas_open) {
  cross_shard_report r;
  basic_checker<cross_shard_report> c(r);
  r.shards = clearing.size();
  r.sagas_open = sagas_open;
  auto name = [](u128 id) {
    return std::string(system_ids::is_two_phase_clearing(id) ? "two-phase " : "") + "clearing(" + std::to_string(system_ids::clearing_from(id)) + " -> " +
           std::to_string(system_ids::clearing_to(id)) + ", ledger " +
           std::to_string(system_ids::clearing_ledger(id)) + ")";
  };
  // Every clearing account where it must be, and the ledger its id names.
  std::map<u128, const account*> by_id;
  for (const auto& [shard, rows] : clearing) {
    for (const account& a : rows) {
      if (!system_ids::is_clearing(a.id)) {
        c.problem("shard " + std::to_string(shard) + ": account " + str(a.id) +
                  " was handed in as a clearing account but is not one");
        continue;
      }
      if (system_ids::clearing_from(a.id) != shard)
        c.problem(name(a.id) + " is stored in shard " + std::to_string(shard) + ", not in shard " +
                  std::to_string(system_ids::clearing_from(a.id)));
      if (a.ledger != system_ids::clearing_ledger(a.id))
        c.problem(name(a.id) + " in shard " + std::to_string(shard) + " has ledger " +
                  std::to_string(a.ledger));
      by_id.emplace(a.id, &a);
    }
  }
  if (sagas_open == 0) {
    auto has_balance = [](const account& a) {
      return a.debits_pending != 0 || a.debits_posted != 0 || a.credits_pending != 0 ||
             a.credits_posted != 0;
    };
    for (const auto& [id, a] : by_id) {
      const uint32_t from = system_ids::clearing_from(id), to = system_ids::clearing_to(id),
                     ledger = system_ids::clearing_ledger(id);
      const u128 mirror_id = system_ids::clearing(to, from, ledger, system_ids::is_two_phase_clearing(id));
      auto mirror = by_id.find(mirror_id);
      if (mirror == by_id.end()) {
        if (has_balance(*a))
          c.problem(name(id) + " in shard " + std::to_string(from) + " has debits_posted " +
                    str(a->debits_posted) + ", credits_posted " + str(a->credits_posted) +
                    ", debits_pending " + str(a->debits_pending) + ", credits_pending " +
                    str(a->credits_pending) + " but shard " + std::to_string(to) +
                    (clearing.count(to) ? " holds no " + name(mirror_id) : " is not in this store"));
        continue;
      }
      if (id > mirror_id) continue; // each pair once, from its lower id
      ++r.pairs;
      const account& b = *mirror->second;
      auto mirrors = [&, id = id](const char* field_a, u128 value_a, const char* field_b, u128 value_b) {
        if (value_a != value_b)
          c.problem(name(id) + " has " + field_a + " " + str(value_a) + " but " + name(mirror_id) +
                    " has " + field_b + " " + str(value_b) + "; they must be equal");
      };
      mirrors("credits_posted", a->credits_posted, "debits_posted", b.debits_posted);
      mirrors("debits_posted", a->debits_posted, "credits_posted", b.credits_posted);
      mirrors("credits_pending", a->credits_pending, "debits_pending", b.debits_pending);
      mirrors("debits_pending", a->debits_pending, "credits_pending", b.credits_pending);
    }
  }
  r.consistent = r.problems_total == 0;
  const std::string shards = std::to_string(r.shards) + " shard" + (r.shards == 1 ? "" : "s");
  if (!r.consistent) {
    r.summary = "cross-shard: INCONSISTENT: " + std::to_string(r.problems_total) + " problem" +
                (r.problems_total == 1 ? "" : "s") + " between the clearing accounts of " + shards;
  } else if (sagas_open != 0) {
    r.summary = "cross-shard: " + std::to_string(sagas_open) +
                (sagas_open == 1 ? " saga open; it is" : " sagas open; they are") +
                " finished at the next start (clearing accounts of " + shards +
                " not compared until then)";
  } else {
    r.summary = "cross-shard: consistent: " + std::to_string(r.pairs) + " clearing pair" +
                (r.pairs == 1 ? "" : "s") + " across " + shards + " mirror each other";
  }
  return r;
}

} // namespace kassa::ledger::store
