// Resource exhaustion end to end: a real kassad on 127.0.0.1 with small limits in its YAML.
// Each case runs out of one resource and shows a clear error (a frame status, or the
// documented close), that nothing is corrupted (`kassa verify`, balances as acknowledged),
// and that other clients are served meanwhile. Tagged [e2e][exhaustion].
#include <catch2/catch.hpp>

#include <boost/asio.hpp>
#include <algorithm>
#include <fstream>
#include <map>
#include <optional>
#include <regex>
#include <set>
#include <sys/mount.h>
#include <thread>

#include "ledger/id_map.hpp"
#include "ledger/payments/ids.hpp"
#include "ledger/payments/records.hpp"
#include "ledger/system_ids.hpp"
#include "tests/ledger/ledger_fixture.hpp"
#include "tests/runtime/kassad_fixture.hpp"

using namespace kassa;
using namespace kassa::ledger;
using namespace kassa::test;
namespace asio = boost::asio;

namespace {

// The status a failing call threw, or ok when it did not throw.
template <class F>
wire::status status_of(F&& call) {
  try {
    call();
  } catch (const client::error& e) {
    return e.kind == client::error_kind::status ? e.status : wire::status::internal;
  }
  return wire::status::ok;
}

std::vector<transfer> transfers(u128 first_id, size_t count, u128 from, u128 to) {
  std::vector<transfer> out;
  for (size_t i = 0; i < count; ++i) out.push_back(make_transfer(first_id + i, from, to, 1));
  return out;
}

std::vector<u128> ids_of(const std::vector<transfer>& ts) {
  std::vector<u128> out;
  for (const auto& t : ts) out.push_back(t.id);
  return out;
}

bool verify(const kassad_instance& k) {
  std::string out;
  const int status = run({KASSA_CLI, "verify", "--data", k.data_dir()}, out);
  UNSCOPED_INFO("kassa verify: " << out);
  return status == 0;
}

// A connection without the client library: frames as the test writes them, replies as they
// come, and the socket's own end of stream.
struct raw_connection {
  asio::io_context io;
  asio::ip::tcp::socket socket{io};

  explicit raw_connection(uint16_t port) { socket.connect({asio::ip::make_address("127.0.0.1"), port}); }

  static void append(std::vector<uint8_t>& out, wire::operation op, uint64_t request_id, const void* body,
                     size_t body_bytes, uint32_t event_count) {
    wire::header h;
    h.op = op;
    h.request_id = request_id;
    h.event_count = event_count;
    wire::encode(out, h, body, body_bytes);
  }
  static void append_hello(std::vector<uint8_t>& out) {
    wire::hello_request hello;
    append(out, wire::operation::hello, 1, &hello, sizeof hello, 1);
  }
  void send(const std::vector<uint8_t>& bytes) { asio::write(socket, asio::buffer(bytes)); }

  // The next frame's header, or nothing at the end of the stream.
  std::optional<wire::header> read_frame() {
    std::vector<uint8_t> frame(wire::header_bytes);
    boost::system::error_code ec;
    asio::read(socket, asio::buffer(frame), ec);
    if (ec) return std::nullopt;
    uint32_t frame_bytes = 0;
    std::memcpy(&frame_bytes, frame.data() + 8, 4);
    frame.resize(frame_bytes);
    asio::read(socket, asio::buffer(frame.data() + wire::header_bytes, frame_bytes - wire::header_bytes), ec);
    if (ec) return std::nullopt;
    const wire::decoded d = wire::decode(frame.data(), frame.size(), wire::limits{1u << 26, 65535, true});
    REQUIRE(d.outcome == wire::decode_outcome::frame);
    return d.h;
  }
  // True when the server closed the connection (end of stream before any byte).
  bool closed_by_server() {
    uint8_t byte;
    boost::system::error_code ec;
    asio::read(socket, asio::buffer(&byte, 1), ec);
    return ec == asio::error::eof || ec == asio::error::connection_reset;
  }
};

// The most a TCP connection's two kernel buffers may hold here (receive + send maximum).
size_t tcp_buffers_max_bytes() {
  size_t total = 0;
  for (const char* path : {"/proc/sys/net/ipv4/tcp_rmem", "/proc/sys/net/ipv4/tcp_wmem"}) {
    size_t low = 0, initial = 0, max = 32u << 20;
    std::ifstream(path) >> low >> initial >> max;
    total += max;
  }
  return total;
}

// kassad's anonymous memory (heap), in KiB, from /proc.
size_t rss_anon_kib(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("RssAnon:", 0) == 0) return std::stoul(line.substr(8));
  }
  return 0;
}


// The shard that holds an account, as actors/directory.cpp maps ids: kassa's clearing
// accounts and the payment core's chart name theirs, a client's account goes by its hash.
uint32_t shard_of(u128 id, uint32_t shards) {
  namespace sid = ledger::system_ids;
  if (sid::is_clearing(id)) return sid::clearing_from(id) % shards;
  if (sid::kind_of(id) == sid::kind::payment_account) return ledger::payments::account_shard(id) % shards;
  return uint32_t((id_hash(id) >> 40) % shards);
}

// Every clearing account a store of `shards` shards may hold for `ledger_id`: those of posted
// transfers and those of pending transfers across shards.
std::vector<u128> clearing_accounts(uint32_t shards, uint32_t ledger_id) {
  std::vector<u128> out;
  for (uint32_t from = 0; from < shards; ++from)
    for (uint32_t to = 0; to < shards; ++to)
      if (from != to)
        for (bool two_phase : {false, true}) out.push_back(ledger::system_ids::clearing(from, to, ledger_id, two_phase));
  return out;
}

std::map<u128, account> accounts_by_id(client::blocking_client& c, const std::vector<u128>& ids) {
  std::map<u128, account> out;
  for (size_t i = 0; i < ids.size(); i += 256) {
    std::vector<u128> part(ids.begin() + i, ids.begin() + std::min(ids.size(), i + 256));
    for (const account& a : c.lookup_accounts(part)) out[a.id] = a;
  }
  return out;
}

std::vector<transfer> lookup_all(client::blocking_client& c, const std::vector<u128>& ids) {
  std::vector<transfer> out;
  for (size_t i = 0; i < ids.size(); i += 256) {
    std::vector<u128> part(ids.begin() + i, ids.begin() + std::min(ids.size(), i + 256));
    for (const transfer& t : c.lookup_transfers(part)) out.push_back(t);
  }
  return out;
}

// No transfer half-applied, read from a client: in every shard debits equal credits, posted
// and pending, over `ids` (every account the test and kassa created there, clearing accounts
// included). With `resolved` (every saga finished), each pair of clearing accounts mirrors
// the other and none holds anything pending.
void check_books(client::blocking_client& c, uint32_t shards, const std::vector<u128>& ids, bool resolved) {
  const auto rows = accounts_by_id(c, ids);
  std::vector<u128> dp(shards), cp(shards), dpo(shards), cpo(shards);
  for (const auto& [id, a] : rows) {
    const uint32_t s = shard_of(id, shards);
    dp[s] += a.debits_pending;
    cp[s] += a.credits_pending;
    dpo[s] += a.debits_posted;
    cpo[s] += a.credits_posted;
  }
  for (uint32_t s = 0; s < shards; ++s) {
    INFO("shard " << s);
    CHECK(dpo[s] == cpo[s]);
    CHECK(dp[s] == cp[s]);
  }
  if (!resolved) return;
  namespace sid = ledger::system_ids;
  for (const auto& [id, a] : rows) {
    if (!sid::is_clearing(id)) continue;
    const bool two_phase = sid::is_two_phase_clearing(id);
    INFO("clearing " << sid::clearing_from(id) << " -> " << sid::clearing_to(id) << (two_phase ? " (two-phase)" : ""));
    auto other = rows.find(sid::clearing(sid::clearing_to(id), sid::clearing_from(id), sid::clearing_ledger(id), two_phase));
    REQUIRE(other != rows.end());
    CHECK(a.credits_posted == other->second.debits_posted);
    CHECK(a.debits_posted == other->second.credits_posted);
    // Pending legs of two-phase transfers across shards mirror each other; no other leg is pending.
    CHECK(a.debits_pending == (two_phase ? other->second.credits_pending : 0));
    CHECK(a.credits_pending == (two_phase ? other->second.debits_pending : 0));
  }
}

} // namespace

TEST_CASE("a full LMDB map: changes answer store_unavailable, reads go on, and a bigger map takes "
          "them after a restart",
          "[e2e][exhaustion]") {
  kassad_instance k("", "fsync", /*map_size_mib=*/1);
  auto writer = k.connect();
  REQUIRE(writer.create_accounts({make_account(1), make_account(2)}).empty());
  // Fill the map: batches of 500 transfers of 1 until one is refused.
  u128 next_id = 1000;
  size_t acked = 0;
  wire::status refused = wire::status::ok;
  std::vector<transfer> refused_batch;
  for (int batch = 0; batch < 200 && refused == wire::status::ok; ++batch) {
    auto ts = transfers(next_id, 500, 1, 2);
    next_id += 500;
    std::vector<create_transfer_outcome> failures;
    refused = status_of([&] { failures = writer.create_transfers(ts); });
    REQUIRE(failures.empty());
    if (refused == wire::status::ok) acked += ts.size();
    else refused_batch = ts;
  }
  INFO(k.output());
  REQUIRE(refused == wire::status::store_unavailable);
  REQUIRE(acked > 0);
  CHECK(k.wait_for_output("the store is full"));

  // Further changes are refused at once; reads, from this client and another, are served.
  CHECK(status_of([&] { writer.create_transfers({make_transfer(next_id++, 1, 2, 1)}); }) ==
        wire::status::store_unavailable);
  auto reader = k.connect();
  auto accounts = reader.lookup_accounts({1, 2});
  REQUIRE(accounts.size() == 2);
  CHECK(uint64_t(accounts[0].debits_posted) == acked);
  CHECK(uint64_t(accounts[1].credits_posted) == acked);
  CHECK(reader.lookup_transfers({1000, u128(1000 + acked - 1)}).size() == 2);
  writer.close();
  reader.close();
  CHECK(k.stop() == 0);
  CHECK(verify(k));

  // A bigger map: the store is intact, the refused batch goes through, new writes work.
  k.write_config(64);
  k.start();
  auto c = k.connect();
  accounts = c.lookup_accounts({1, 2});
  REQUIRE(accounts.size() == 2);
  CHECK(uint64_t(accounts[0].debits_posted) == acked);
  CHECK(c.create_transfers(refused_batch).empty());
  CHECK(c.create_transfers(transfers(next_id, 500, 2, 1)).empty());
  accounts = c.lookup_accounts({1, 2});
  CHECK(uint64_t(accounts[0].debits_posted) == acked + refused_batch.size());
  CHECK(uint64_t(accounts[0].credits_posted) == 500);
  c.close();
  CHECK(k.stop() == 0);
  CHECK(verify(k));
}

TEST_CASE("a full LMDB map with three shards: a round the full shard did not take stands whole after a "
          "restart with a bigger map, and the refused transfers can be sent again",
          "[e2e][exhaustion]") {
  constexpr uint32_t shards = 3;
  kassad_instance k("  shards: 3\n", "fsync", /*map_size_mib=*/1);
  // Two accounts in each shard, and every pair of them in different shards; pairs with shard 0
  // come twice, so that shard 0 fills first while the others still have room: the round that
  // fills it has legs in the other shards to undo, and transfers between those to commit.
  std::vector<u128> users;
  std::vector<size_t> per_shard(shards);
  for (u128 id = 1; users.size() < 2 * shards; ++id) {
    if (per_shard[shard_of(id, shards)]++ < 2) users.push_back(id);
  }
  std::vector<std::pair<u128, u128>> pairs;
  for (u128 a : users) {
    for (u128 b : users) {
      const uint32_t sa = shard_of(a, shards), sb = shard_of(b, shards);
      if (sa == sb) continue;
      pairs.emplace_back(a, b);
      if (sa == 0 || sb == 0) pairs.emplace_back(a, b);
    }
  }
  auto across = [&](u128 first_id, size_t count) {
    std::vector<transfer> out;
    for (size_t i = 0; i < count; ++i) {
      const auto& [from, to] = pairs[size_t(first_id + i) % pairs.size()];
      out.push_back(make_transfer(first_id + i, from, to, 1));
    }
    return out;
  };
  std::vector<u128> books = users; // every account of every shard, kassa's clearing accounts too
  for (u128 id : clearing_accounts(shards, 1)) books.push_back(id);

  auto writer = k.connect();
  std::vector<account> new_accounts;
  for (u128 id : users) new_accounts.push_back(make_account(id));
  REQUIRE(writer.create_accounts(new_accounts).empty());
  // What each account's debits and credits should be, from what kassad acknowledged.
  std::map<u128, uint64_t> debits, credits;
  auto count = [&](const std::vector<transfer>& ts) {
    for (const auto& t : ts) {
      debits[t.debit_account_id] += uint64_t(t.amount);
      credits[t.credit_account_id] += uint64_t(t.amount);
    }
  };
  // Batches of 500 transfers across shards until one is refused.
  u128 next_id = 1000;
  std::vector<u128> acked;
  std::vector<transfer> refused;
  wire::status st = wire::status::ok;
  for (int batch = 0; batch < 200 && st == wire::status::ok; ++batch) {
    auto ts = across(next_id, 500);
    next_id += 500;
    std::vector<create_transfer_outcome> failures;
    st = status_of([&] { failures = writer.create_transfers(ts); });
    REQUIRE(failures.empty());
    if (st == wire::status::ok) {
      count(ts);
      for (const auto& t : ts) acked.push_back(t.id);
    } else {
      refused = ts;
    }
  }
  INFO(k.output());
  REQUIRE(st == wire::status::store_unavailable);
  REQUIRE(!acked.empty());
  REQUIRE(k.wait_for_output("the store is full"));
  std::smatch m;
  const std::string out = k.output();
  REQUIRE(std::regex_search(out, m, std::regex("the store is full[^\\n]* shard=([0-9]+)")));
  CHECK(m[1] == "0");
  INFO(acked.size() << " transfers acknowledged");

  // A transfer that needs the full shard is refused at once; one between accounts of the
  // other two shards that no refused round names goes through.
  auto in_shard = [&](uint32_t s) {
    return *std::find_if(users.begin(), users.end(), [&](u128 id) { return shard_of(id, shards) == s; });
  };
  const transfer one = make_transfer(next_id++, in_shard(1), in_shard(0), 1);
  CHECK(status_of([&] { writer.create_transfers({one}); }) == wire::status::store_unavailable);
  refused.push_back(one);
  std::vector<u128> fresh_accounts;
  for (u128 id = 1'000'000; fresh_accounts.size() < 2; ++id) {
    if (shard_of(id, shards) == fresh_accounts.size() + 1) fresh_accounts.push_back(id);
  }
  REQUIRE(writer.create_accounts({make_account(fresh_accounts[0]), make_account(fresh_accounts[1])}).empty());
  const transfer between = make_transfer(next_id++, fresh_accounts[1], fresh_accounts[0], 1);
  CHECK(writer.create_transfers({between}).empty());
  users.insert(users.end(), fresh_accounts.begin(), fresh_accounts.end());
  books.insert(books.end(), fresh_accounts.begin(), fresh_accounts.end());
  count({between});
  acked.push_back(between.id);

  // Another client reads every acknowledged transfer and balances that hold at least those. A
  // refused round stands in the shards that took it until the full one takes its part too
  // (its transfers are not visible meanwhile); every shard balances on its own.
  auto reader = k.connect();
  CHECK(lookup_all(reader, acked).size() == acked.size());
  for (const auto& [id, a] : accounts_by_id(reader, users)) {
    INFO("account " << to_string_u128(id));
    CHECK(uint64_t(a.debits_posted) >= debits[id]);
    CHECK(uint64_t(a.credits_posted) >= credits[id]);
    CHECK(a.debits_pending == 0);
    CHECK(a.credits_pending == 0);
  }
  check_books(reader, shards, books, false);
  writer.close();
  reader.close();
  CHECK(k.stop() == 0);
  CHECK(verify(k));

  // A bigger map: recovery finishes every saga, and the books hold exactly the acknowledged
  // transfers and the refused ones that landed, each whole.
  k.write_config(64);
  k.start();
  auto c = k.connect();
  check_books(c, shards, books, true);
  std::vector<u128> refused_ids = ids_of(refused);
  std::set<u128> landed;
  for (const auto& t : lookup_all(c, refused_ids)) landed.insert(t.id);
  auto expect = [&](const std::map<u128, account>& rows) {
    for (const auto& [id, a] : rows) {
      INFO("account " << to_string_u128(id));
      CHECK(uint64_t(a.debits_posted) == debits[id]);
      CHECK(uint64_t(a.credits_posted) == credits[id]);
      CHECK(a.debits_pending == 0);
      CHECK(a.credits_pending == 0);
    }
  };
  {
    std::vector<transfer> ts;
    for (const auto& t : refused) if (landed.count(t.id)) ts.push_back(t);
    count(ts);
    expect(accounts_by_id(c, users));
  }
  // The refused transfers again: one that landed answers exists, the others go through; no
  // id was used up.
  std::vector<create_transfer_outcome> results;
  REQUIRE(status_of([&] { results = c.create_transfers(refused); }) == wire::status::ok);
  std::map<uint32_t, transfer_result> result_of;
  for (const auto& r : results) result_of[r.index] = r.result;
  std::vector<transfer> applied;
  std::vector<u128> unexpected;
  for (uint32_t i = 0; i < refused.size(); ++i) {
    const transfer_result r = result_of.count(i) ? result_of[i] : transfer_result::ok;
    INFO("transfer " << to_string_u128(refused[i].id) << ": " << name(r));
    if (landed.count(refused[i].id)) {
      CHECK(r == transfer_result::exists);
    } else if (r == transfer_result::ok) {
      applied.push_back(refused[i]);
    } else {
      CHECK(r == transfer_result::ok);
      unexpected.push_back(refused[i].id);
    }
  }
  INFO(landed.size() << " landed, " << applied.size() << " applied on the retry, " << unexpected.size() << " refused");
  CHECK(unexpected.empty());
  count(applied);
  // Fresh ids go through, across every pair of shards.
  auto fresh = across(next_id, 500);
  CHECK(c.create_transfers(fresh).empty());
  count(fresh);
  expect(accounts_by_id(c, users));
  check_books(c, shards, books, true);
  c.close();
  CHECK(k.stop() == 0);
  CHECK(verify(k));
}

TEST_CASE("a full payments store: commands answer store_unavailable, nothing acknowledged is lost, "
          "ledger reads go on, and a bigger map finishes every payment after a restart",
          "[e2e][exhaustion][payments]") {
  namespace lp = ledger::payments;
  constexpr uint32_t shards = 3;
  // The payment core on ledger 1. Transfers between users and orders paid from balances never
  // call a provider: nobody listens at alpha's address. The payments store has the shards'
  // map size (runtime/core.cpp).
  kassad_instance k("  shards: 3\n"
                    "payments:\n"
                    "  enabled: true\n"
                    "  flow_wait_ms: 10000\n"
                    "  ledgers: [{ledger: 1, currency: USD}]\n"
                    "  providers:\n"
                    "    - {name: alpha, url: \"http://127.0.0.1:9/p/alpha\", ledgers: [1], events_poll_ms: 0,\n"
                    "       statement_poll_ms: 0}\n"
                    "  reconciliation: {enabled: false}\n"
                    "  accounting: {enabled: false}\n",
                    "fsync", /*map_size_mib=*/1);
  // Six users (two a shard) funded by a bank, three merchants.
  const u128 bank = 100, saver = 300;
  std::vector<u128> users, merchants;
  std::vector<size_t> per_shard(shards);
  for (u128 id = 1; users.size() < 2 * shards; ++id) {
    if (per_shard[shard_of(id, shards)]++ < 2) users.push_back(id);
  }
  for (u128 id : {201, 202, 203}) merchants.push_back(id);
  std::vector<u128> people = users;
  people.insert(people.end(), merchants.begin(), merchants.end());
  std::vector<u128> books = people; // every account of every shard
  books.push_back(bank);
  books.push_back(saver);
  for (u128 id : clearing_accounts(shards, 1)) books.push_back(id);
  for (uint32_t s = 0; s < shards; ++s) {
    for (auto r : {lp::role::provider_clearing, lp::role::fees, lp::role::suspense, lp::role::escrow})
      books.push_back(lp::account_id(r, 0, s, 1));
  }
  constexpr uint64_t funding = 100000;
  auto admin = k.connect();
  {
    std::vector<account> as{make_account(bank), make_account(saver)};
    for (u128 id : users) as.push_back(make_account(id, 1, account_debits_must_not_exceed_credits));
    for (u128 id : merchants) as.push_back(make_account(id));
    REQUIRE(admin.create_accounts(as).empty());
    std::vector<transfer> ts;
    for (u128 id : users) ts.push_back(make_transfer(id, bank, id, funding));
    REQUIRE(admin.create_transfers(ts).empty());
  }

  // Every command sent, by key; the acknowledged ones (ok) and the refused ones
  // (store_unavailable) apart.
  std::map<u128, lp::payment_command> sent;
  std::vector<u128> acked, refused;
  u128 next = 10000; // keys and order ids
  auto transfer_cmd = [&](u128 from, u128 to, u128 amount) {
    lp::payment_command c{};
    c.key = next++;
    c.order_id = next++;
    c.account_id = from;
    c.counterparty_id = to;
    c.amount = amount;
    c.ledger = 1;
    c.kind = uint16_t(lp::kind::transfer);
    return c;
  };
  auto order_cmd = [&](u128 merchant, u128 amount) {
    lp::payment_command c{};
    c.key = next++;
    c.order_id = next++;
    c.account_id = merchant;
    c.amount = amount;
    c.ledger = 1;
    c.kind = uint16_t(lp::kind::create_order);
    return c;
  };
  auto pay_cmd = [&](u128 order_id, u128 payer, u128 amount) {
    lp::payment_command c{};
    c.key = next++;
    c.order_id = order_id;
    c.account_id = payer;
    c.amount = amount;
    c.kind = uint16_t(lp::kind::pay);
    c.source = uint16_t(lp::source::balance);
    return c;
  };
  // Sends `cs`; returns how many were refused store_unavailable (the request's status or each
  // command's result). Any other outcome fails the test.
  auto submit = [&](client::blocking_client& c, const std::vector<lp::payment_command>& cs) {
    for (const auto& cmd : cs) sent[cmd.key] = cmd;
    std::vector<lp::payment_reply> replies;
    const wire::status st = status_of([&] { replies = c.submit_payments(cs); });
    if (st == wire::status::store_unavailable) {
      for (const auto& cmd : cs) refused.push_back(cmd.key);
      return cs.size();
    }
    REQUIRE(st == wire::status::ok);
    REQUIRE(replies.size() == cs.size());
    size_t out = 0;
    for (size_t i = 0; i < cs.size(); ++i) {
      const auto result = lp::payment_result(replies[i].result);
      INFO("command " << to_string_u128(cs[i].key) << ": " << lp::name(result));
      REQUIRE((result == lp::payment_result::ok || result == lp::payment_result::store_unavailable));
      if (result == lp::payment_result::ok) acked.push_back(cs[i].key);
      else refused.push_back(cs[i].key), ++out;
    }
    return out;
  };

  // Rounds of 10 orders (then paid in full from a balance) and 10 transfers, until a command is
  // refused; at most 20 s.
  auto writer = k.connect();
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  size_t refusals = 0;
  uint64_t round = 0;
  for (; refusals == 0 && round < 500 && std::chrono::steady_clock::now() < until; ++round) {
    std::vector<lp::payment_command> orders, more;
    for (size_t i = 0; i < 10; ++i) orders.push_back(order_cmd(merchants[(round + i) % merchants.size()], 5));
    refusals += submit(writer, orders);
    const std::set<u128> taken(acked.end() - std::min<size_t>(acked.size(), orders.size()), acked.end());
    for (size_t i = 0; i < 10; ++i) {
      const size_t u = size_t(round * 10 + i);
      if (taken.count(orders[i].key)) more.push_back(pay_cmd(orders[i].order_id, users[u % users.size()], 5));
      more.push_back(transfer_cmd(users[u % users.size()], users[(u + 1 + round % 5) % users.size()], 3));
    }
    refusals += submit(writer, more);
  }
  INFO(k.output());
  INFO(round << " rounds: " << acked.size() << " commands acknowledged, " << refused.size() << " refused");
  REQUIRE(refusals > 0);
  REQUIRE(!acked.empty());
  CHECK(k.output().find("the store is full") == std::string::npos); // the ledger's shards have room
  CHECK(k.wait_for_output("a write of the payments store failed"));
  CHECK(k.output().find("the payments store is full") != std::string::npos);

  // The rows of every command; a command refused before it was stored has none.
  auto rows_of = [&](client::blocking_client& c) {
    std::vector<u128> ids;
    for (const auto& [key, cmd] : sent) ids.push_back(cmd.kind == uint16_t(lp::kind::pay) ? key : cmd.order_id);
    std::map<u128, lp::order> out;
    for (size_t i = 0; i < ids.size(); i += 256) {
      std::vector<u128> part(ids.begin() + i, ids.begin() + std::min(ids.size(), i + 256));
      for (const auto& row : c.lookup_orders(part)) out[row.id] = row;
    }
    return out;
  };
  auto row_id = [&](u128 key) {
    const auto& cmd = sent.at(key);
    return cmd.kind == uint16_t(lp::kind::pay) ? key : cmd.order_id;
  };
  auto final_state = [](const lp::order& row) {
    const auto s = lp::order_state(row.state);
    return s == lp::order_state::completed || s == lp::order_state::failed || s == lp::order_state::in_review ||
           s == lp::order_state::partially_refunded || s == lp::order_state::refunded;
  };
  // Every acknowledged command's row, as acknowledged: a transfer or pay item completed, an
  // order created (or completed, once paid).
  auto check_acked = [&](const std::map<u128, lp::order>& rows) {
    for (u128 key : acked) {
      const auto& cmd = sent.at(key);
      INFO("command " << to_string_u128(key) << " kind " << cmd.kind);
      auto it = rows.find(row_id(key));
      REQUIRE(it != rows.end());
      const auto s = lp::order_state(it->second.state);
      if (cmd.kind == uint16_t(lp::kind::create_order)) CHECK((s == lp::order_state::created || s == lp::order_state::completed));
      else CHECK(s == lp::order_state::completed);
    }
  };
  // What the completed rows moved, per account: users' balances from their funding, each
  // merchant's from zero.
  auto moved = [&](const std::map<u128, lp::order>& rows) {
    std::map<u128, __int128> net;
    for (u128 id : users) net[id] = funding;
    for (const auto& [id, row] : rows) {
      if (lp::order_state(row.state) != lp::order_state::completed) continue;
      if (row.kind == uint16_t(lp::kind::transfer)) {
        net[row.account_id] -= __int128(row.amount);
        net[row.counterparty_id] += __int128(row.amount);
      } else if (row.kind == uint16_t(lp::kind::pay)) {
        net[row.account_id] -= __int128(row.amount);
        net[rows.at(row.parent_id).account_id] += __int128(row.amount);
      }
    }
    return net;
  };

  // Meanwhile another client reads the ledger and the rows: every acknowledged one is there
  // as acknowledged; balances hold every acknowledged payment and at most the refused ones;
  // every shard balances. The ledger also takes changes that need no payment.
  auto reader = k.connect();
  CHECK(reader.create_transfers({make_transfer(900000, bank, saver, 1)}).empty());
  CHECK(reader.lookup_accounts({saver}).at(0).credits_posted == 1);
  {
    const auto rows = rows_of(reader);
    check_acked(rows);
    std::map<u128, lp::order> acked_rows;
    for (u128 key : acked) acked_rows[row_id(key)] = rows.at(row_id(key));
    for (const auto& [id, row] : rows) if (row.kind == uint16_t(lp::kind::create_order)) acked_rows[id] = row;
    const auto low = moved(acked_rows);
    std::map<u128, u128> merchant_of;
    for (const auto& [key, cmd] : sent)
      if (cmd.kind == uint16_t(lp::kind::create_order)) merchant_of[cmd.order_id] = cmd.account_id;
    std::map<u128, __int128> may_out, may_in; // what refused commands could have moved
    for (u128 key : refused) {
      const auto& cmd = sent.at(key);
      if (cmd.kind == uint16_t(lp::kind::transfer)) {
        may_out[cmd.account_id] += __int128(cmd.amount);
        may_in[cmd.counterparty_id] += __int128(cmd.amount);
      } else if (cmd.kind == uint16_t(lp::kind::pay)) {
        may_out[cmd.account_id] += __int128(cmd.amount);
        may_in[merchant_of.at(cmd.order_id)] += __int128(cmd.amount);
      }
    }
    for (const auto& [id, a] : accounts_by_id(reader, people)) {
      INFO("account " << to_string_u128(id));
      const __int128 balance = __int128(a.credits_posted) - __int128(a.debits_posted);
      const __int128 expected = low.count(id) ? low.at(id) : 0;
      CHECK(balance >= expected - may_out[id]);
      CHECK(balance <= expected + may_in[id]);
    }
    check_books(reader, shards, books, false);
  }
  writer.close();
  reader.close();
  admin.close();
  CHECK(k.stop() == 0);
  CHECK(verify(k));

  // A bigger map: the flows the full store left unfinished resume and every row ends final;
  // the acknowledged ones are as acknowledged, and the balances are what the completed rows
  // moved.
  k.write_config(64);
  k.start();
  auto c = k.connect();
  std::map<u128, lp::order> rows;
  const auto settle_until = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  for (;;) {
    rows = rows_of(c);
    const bool settled = std::all_of(rows.begin(), rows.end(), [&](const auto& r) {
      return r.second.kind == uint16_t(lp::kind::create_order) || final_state(r.second);
    });
    if (settled || std::chrono::steady_clock::now() > settle_until) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  auto check_settled = [&](const std::map<u128, lp::order>& rows) {
    check_acked(rows);
    for (const auto& [id, row] : rows) {
      INFO("row " << to_string_u128(id) << " kind " << row.kind << " state " << lp::name(lp::order_state(row.state)));
      if (row.kind != uint16_t(lp::kind::create_order)) CHECK(final_state(row));
    }
    // each order counts what its completed items captured
    std::map<u128, u128> captured;
    for (const auto& [id, row] : rows)
      if (row.kind == uint16_t(lp::kind::pay) && lp::order_state(row.state) == lp::order_state::completed)
        captured[row.parent_id] += row.amount;
    for (const auto& [id, row] : rows) {
      if (row.kind != uint16_t(lp::kind::create_order)) continue;
      INFO("order " << to_string_u128(id));
      CHECK(row.amount_captured == captured[id]);
      CHECK(lp::order_state(row.state) == (captured[id] == 0 ? lp::order_state::created : lp::order_state::completed));
    }
    const auto net = moved(rows);
    for (const auto& [id, a] : accounts_by_id(c, people)) {
      INFO("account " << to_string_u128(id));
      CHECK(__int128(a.credits_posted) - __int128(a.debits_posted) == (net.count(id) ? net.at(id) : 0));
      CHECK(a.debits_pending == 0);
    }
    check_books(c, shards, books, true);
  };
  check_settled(rows);

  // The refused commands again, with their keys: those stored answer exists, the others are
  // carried out; then a round of new ones. All of them complete.
  std::vector<lp::payment_command> again;
  for (u128 key : refused) again.push_back(sent.at(key));
  size_t stored = 0;
  for (size_t i = 0; i < again.size(); i += 100) {
    std::vector<lp::payment_command> part(again.begin() + i, again.begin() + std::min(again.size(), i + 100));
    const auto replies = c.submit_payments(part);
    REQUIRE(replies.size() == part.size());
    for (size_t j = 0; j < part.size(); ++j) {
      const auto result = lp::payment_result(replies[j].result);
      INFO("command " << to_string_u128(part[j].key) << ": " << lp::name(result));
      CHECK((result == lp::payment_result::ok || result == lp::payment_result::exists));
      if (result == lp::payment_result::exists) ++stored;
      acked.push_back(part[j].key);
    }
  }
  refused.clear();
  std::vector<lp::payment_command> orders, more;
  for (size_t i = 0; i < 10; ++i) orders.push_back(order_cmd(merchants[i % merchants.size()], 7));
  CHECK(submit(c, orders) == 0);
  for (size_t i = 0; i < 10; ++i) {
    more.push_back(pay_cmd(orders[i].order_id, users[i % users.size()], 7));
    more.push_back(transfer_cmd(users[i % users.size()], users[(i + 2) % users.size()], 4));
  }
  CHECK(submit(c, more) == 0);
  INFO(stored << " of the refused commands had been stored");
  check_settled(rows_of(c));
  c.close();
  CHECK(k.stop() == 0);
  CHECK(verify(k));
}

TEST_CASE("a full disk: kassad acknowledges only what it wrote and takes changes again once there "
          "is room",
          "[e2e][exhaustion]") {
  // A small tmpfs for the data directory; mounting needs root (CAP_SYS_ADMIN).
  temp_dir mount_point;
  if (::mount("tmpfs", mount_point.path().c_str(), "tmpfs", 0, "size=2m") != 0) {
    WARN("SKIPPED: cannot mount a tmpfs for the full-disk case (" << std::strerror(errno)
                                                                   << "); it needs root");
    return;
  }
  struct unmount_at_end {
    std::string path;
    ~unmount_at_end() { ::umount2(path.c_str(), MNT_DETACH); }
  } unmount{mount_point.path()};
  std::optional<kassad_instance> k;
  k.emplace("", "fsync", /*map_size_mib=*/64, mount_point.path() + "/data");
  auto writer = k->connect();
  REQUIRE(writer.create_accounts({make_account(1), make_account(2)}).empty());
  // Batches of 500 until one is refused, then 20 more single transfers: with a few pages
  // left a small commit may still fit. Every acknowledged id is kept.
  u128 next_id = 1000;
  std::vector<u128> acked, refused;
  auto send = [&](size_t count) {
    auto ts = transfers(next_id, count, 1, 2);
    next_id += count;
    std::vector<create_transfer_outcome> failures;
    const wire::status st = status_of([&] { failures = writer.create_transfers(ts); });
    REQUIRE(failures.empty());
    REQUIRE((st == wire::status::ok || st == wire::status::store_unavailable));
    for (const auto& t : ts) (st == wire::status::ok ? acked : refused).push_back(t.id);
    return st;
  };
  for (int batch = 0; batch < 200 && send(500) == wire::status::ok; ++batch) {
  }
  INFO(k->output());
  REQUIRE(!refused.empty());
  REQUIRE(!acked.empty());
  for (int i = 0; i < 20; ++i) send(1);
  CHECK(k->wait_for_output("commit failed"));
  INFO(acked.size() << " acknowledged, " << refused.size() << " refused");

  // Reads are served from another connection, and hold exactly what was acknowledged; so
  // does the store after kill -9 and a restart on the full disk.
  auto reader = k->connect();
  CHECK(uint64_t(reader.lookup_accounts({1}).at(0).debits_posted) == acked.size());
  CHECK(reader.lookup_transfers(refused).empty());
  writer.close();
  reader.close();
  CHECK(k->stop(SIGKILL) == 128 + SIGKILL);
  k->start();
  auto c = k->connect();
  CHECK(uint64_t(c.lookup_accounts({1}).at(0).debits_posted) == acked.size());
  CHECK(c.lookup_transfers(acked).size() == acked.size());
  CHECK(c.lookup_transfers(refused).empty());

  // Room again: the refused transfers go through without a restart.
  REQUIRE(::mount("tmpfs", mount_point.path().c_str(), "tmpfs", MS_REMOUNT, "size=64m") == 0);
  std::vector<transfer> again;
  for (u128 id : refused) again.push_back(make_transfer(id, 1, 2, 1));
  CHECK(c.create_transfers(again).empty());
  const size_t total = acked.size() + refused.size();
  auto accounts = c.lookup_accounts({1, 2});
  CHECK(uint64_t(accounts.at(0).debits_posted) == total);
  CHECK(uint64_t(accounts.at(1).credits_posted) == total);
  c.close();
  CHECK(k->stop() == 0);
  CHECK(verify(*k));
  k.reset(); // kassad is gone before the tmpfs is
}

TEST_CASE("beyond server.connections_max a connection gets busy and is closed; the others carry on",
          "[e2e][exhaustion]") {
  kassad_instance k("", "fsync", 256, "", "  connections_max: 2\n");
  auto a = k.connect();
  auto b = k.connect();
  REQUIRE(a.create_accounts({make_account(1), make_account(2)}).empty());

  raw_connection extra(k.port());
  auto refusal = extra.read_frame();
  REQUIRE(refusal);
  CHECK(refusal->st == wire::status::busy);
  CHECK(refusal->request_id == 0);
  CHECK(extra.closed_by_server());
  CHECK_THROWS_AS(k.connect(), client::error); // the client library fails to connect

  CHECK(a.create_transfers({make_transfer(10, 1, 2, 5)}).empty());
  CHECK(b.lookup_transfers({10}).size() == 1);
  // A closed connection frees its place.
  b.close();
  std::optional<client::blocking_client> c;
  for (int attempt = 0; attempt < 100 && !c; ++attempt) {
    try {
      c.emplace(k.connect());
    } catch (const client::error&) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  }
  REQUIRE(c);
  CHECK(uint64_t(c->lookup_accounts({1}).at(0).debits_posted) == 5);
}

TEST_CASE("a client that never reads its replies is not buffered without bound; others are served",
          "[e2e][exhaustion]") {
  // Replies of 64 transfers (8 KiB) to requests of 1 KiB; a connection stops being read once
  // 4 × frame_bytes_max of replies wait for it.
  kassad_instance k("batching:\n  batch_events_max: 64\n  queue_events_max: 64\n  commit_events_max: 64\n", "fsync",
                    256, "", "  frame_bytes_max: 8448\n  requests_inflight_max: 8\n");
  auto good = k.connect();
  REQUIRE(good.create_accounts({make_account(1), make_account(2)}).empty());
  std::vector<transfer> ts = transfers(100, 64, 1, 2);
  REQUIRE(good.create_transfers(ts).empty());
  const std::vector<u128> ids = ids_of(ts);
  const size_t rss_before = rss_anon_kib(k.pid());

  raw_connection slow(k.port());
  slow.socket.non_blocking(true);
  std::vector<uint8_t> frames;
  raw_connection::append_hello(frames);
  for (uint64_t r = 0; r < 1000; ++r) {
    raw_connection::append(frames, wire::operation::lookup_transfers, 2 + r, ids.data(), ids.size() * sizeof(u128),
                           uint32_t(ids.size()));
  }
  // Write requests (1 MiB at a time) until kassad stops taking them for a second, at most 256 MiB.
  constexpr size_t bytes_max = 256u << 20;
  size_t sent = 0, offset = 0;
  auto last_progress = std::chrono::steady_clock::now();
  while (sent < bytes_max && std::chrono::steady_clock::now() - last_progress < std::chrono::seconds(1)) {
    boost::system::error_code ec;
    const size_t n = slow.socket.write_some(asio::buffer(frames.data() + offset, frames.size() - offset), ec);
    if (ec == asio::error::would_block) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
      continue;
    }
    REQUIRE(!ec);
    sent += n;
    offset = (offset + n) % frames.size();
    if (offset == 0) offset = wire::header_bytes + sizeof(wire::hello_request); // the hello once
    last_progress = std::chrono::steady_clock::now();
  }
  INFO("the slow client wrote " << sent << " bytes before kassad stopped reading");
  // What the kernel buffers and kassad's read buffer hold, not a growing heap.
  CHECK(sent < tcp_buffers_max_bytes() + (16u << 20));
  const size_t rss_after = rss_anon_kib(k.pid());
  INFO("kassad RssAnon " << rss_before << " KiB -> " << rss_after << " KiB");
  CHECK(rss_after < rss_before + 64 * 1024);

  // Meanwhile the others are served.
  CHECK(good.create_transfers({make_transfer(1000, 2, 1, 3)}).empty());
  CHECK(good.lookup_transfers(ids).size() == ids.size());
  auto other = k.connect();
  CHECK(uint64_t(other.lookup_accounts({1}).at(0).credits_posted) == 3);
  slow.socket.close();
  good.close();
  other.close();
  CHECK(k.stop() == 0);
  CHECK(verify(k));
}

TEST_CASE("an oversized frame is answered frame_too_large and closed; too many events is answered "
          "too_many_events on an open connection",
          "[e2e][exhaustion]") {
  kassad_instance k("batching:\n  batch_events_max: 64\n  queue_events_max: 64\n  commit_events_max: 64\n", "fsync",
                    256, "", "  frame_bytes_max: 8448\n");
  auto good = k.connect();
  REQUIRE(good.create_accounts({make_account(1), make_account(2)}).empty());

  // 65 events in a frame that fits: the frame is refused, the connection stays.
  raw_connection c(k.port());
  std::vector<uint8_t> bytes;
  raw_connection::append_hello(bytes);
  auto ts = transfers(100, 65, 1, 2);
  raw_connection::append(bytes, wire::operation::create_transfers, 2, ts.data(), ts.size() * sizeof(transfer), 65);
  ts.pop_back();
  raw_connection::append(bytes, wire::operation::create_transfers, 3, ts.data(), ts.size() * sizeof(transfer), 64);
  c.send(bytes);
  auto hello = c.read_frame();
  REQUIRE(hello);
  CHECK(hello->st == wire::status::ok);
  std::map<uint64_t, wire::status> replies;
  for (int i = 0; i < 2; ++i) {
    auto r = c.read_frame();
    REQUIRE(r);
    replies[r->request_id] = r->st;
  }
  CHECK(replies[2] == wire::status::too_many_events);
  CHECK(replies[3] == wire::status::ok);

  // 100 transfers: 12,928 bytes > frame_bytes_max. Refused as soon as the header arrives,
  // with request_id 0 (framing is lost), then the connection closes. Only the header is
  // sent: bytes kassad never reads would turn its close into a reset.
  bytes.clear();
  auto big = transfers(1000, 100, 1, 2);
  raw_connection::append(bytes, wire::operation::create_transfers, 4, big.data(), big.size() * sizeof(transfer), 100);
  bytes.resize(wire::header_bytes);
  c.send(bytes);
  auto too_large = c.read_frame();
  REQUIRE(too_large);
  CHECK(too_large->st == wire::status::frame_too_large);
  CHECK(too_large->request_id == 0);
  CHECK(c.closed_by_server());

  // Nothing of the refused frames was applied; the others are served.
  CHECK(good.lookup_transfers({100 + 64, 1000}).empty());
  CHECK(uint64_t(good.lookup_accounts({1}).at(0).debits_posted) == 64);
  CHECK(good.create_transfers({make_transfer(5000, 2, 1, 1)}).empty());
  good.close();
  CHECK(k.stop() == 0);
  CHECK(verify(k));
}

TEST_CASE("requests beyond server.requests_inflight_max are answered inflight_limit and not "
          "applied; resent, they are",
          "[e2e][exhaustion]") {
  kassad_instance k("", "fsync", 256, "", "  requests_inflight_max: 2\n");
  auto good = k.connect();
  REQUIRE(good.create_accounts({make_account(1), make_account(2)}).empty());
  raw_connection c(k.port());
  std::vector<uint8_t> bytes;
  raw_connection::append_hello(bytes);
  constexpr uint64_t requests = 20;
  for (uint64_t r = 0; r < requests; ++r) {
    const transfer t = make_transfer(100 + r, 1, 2, 1);
    raw_connection::append(bytes, wire::operation::create_transfers, 2 + r, &t, sizeof t, 1);
  }
  c.send(bytes); // all in one write: kassad reads them together
  REQUIRE(c.read_frame()->st == wire::status::ok); // hello
  std::vector<u128> applied, refused;
  for (uint64_t i = 0; i < requests; ++i) {
    auto r = c.read_frame();
    REQUIRE(r);
    REQUIRE((r->st == wire::status::ok || r->st == wire::status::inflight_limit));
    (r->st == wire::status::ok ? applied : refused).push_back(u128(100 + r->request_id - 2));
  }
  INFO(applied.size() << " applied, " << refused.size() << " refused");
  CHECK(applied.size() >= 2);
  CHECK(!refused.empty());
  CHECK(good.lookup_transfers(applied).size() == applied.size());
  CHECK(good.lookup_transfers(refused).empty());
  CHECK(uint64_t(good.lookup_accounts({1}).at(0).debits_posted) == applied.size());
  std::vector<transfer> again;
  for (u128 id : refused) again.push_back(make_transfer(id, 1, 2, 1));
  CHECK(good.create_transfers(again).empty());
  CHECK(uint64_t(good.lookup_accounts({1}).at(0).debits_posted) == requests);
  good.close();
  CHECK(k.stop() == 0);
  CHECK(verify(k));
}

TEST_CASE("beyond batching.queue_events_max requests are answered busy, nothing is lost, and "
          "retries go through",
          "[e2e][exhaustion]") {
  // The directory queues at most 16 events while a round is in flight; fsync keeps rounds
  // long enough for requests to pile up behind one.
  kassad_instance k("batching:\n  batch_events_max: 16\n  queue_events_max: 16\n  commit_events_max: 16\n");
  auto setup = k.connect();
  REQUIRE(setup.create_accounts({make_account(1), make_account(2)}).empty());
  client::options no_retries;
  no_retries.busy_retries_max = 0;
  auto c = k.connect(no_retries);
  constexpr size_t requests = 64, per_request = 16;
  std::vector<std::vector<transfer>> plan;
  std::vector<std::future<std::vector<create_transfer_outcome>>> futures;
  for (size_t r = 0; r < requests; ++r) {
    plan.push_back(transfers(1000 + r * per_request, per_request, 1, 2));
    futures.push_back(c.async().create_transfers(plan.back()));
  }
  std::vector<size_t> busy;
  size_t ok = 0;
  for (size_t r = 0; r < requests; ++r) {
    std::vector<create_transfer_outcome> failures;
    const wire::status st = status_of([&] { failures = futures[r].get(); });
    CHECK(failures.empty());
    if (st == wire::status::busy) busy.push_back(r);
    else if (st == wire::status::ok) ++ok;
    else FAIL("request " << r << ": status " << wire::name(st));
  }
  INFO(ok << " applied, " << busy.size() << " busy");
  CHECK(!busy.empty());
  // A busy request applied nothing; retried (with the client's backoff), it goes through.
  for (size_t r : busy) CHECK(setup.lookup_transfers(ids_of(plan[r])).empty());
  for (size_t r : busy) CHECK(setup.create_transfers(plan[r]).empty());
  auto accounts = setup.lookup_accounts({1, 2});
  CHECK(uint64_t(accounts[0].debits_posted) == requests * per_request);
  CHECK(uint64_t(accounts[1].credits_posted) == requests * per_request);
  setup.close();
  c.close();
  CHECK(k.stop() == 0);
  CHECK(verify(k));
}
