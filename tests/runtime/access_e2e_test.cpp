// Access control end to end: a real kassad on 127.0.0.1 with access.required, the C++ client
// and the kassa CLI. Every refused request is checked to have changed nothing.
#include <catch2/catch.hpp>

#include <arpa/inet.h>
#include <algorithm>
#include <atomic>
#include <cstring>
#include <fstream>
#include <functional>
#include <mutex>
#include <optional>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <thread>

#include "ledger/payments/records.hpp"
#include "tests/ledger/ledger_fixture.hpp"
#include "tests/process.hpp"
#include "tests/runtime/kassad_fixture.hpp"

using namespace kassa;
using namespace kassa::test;
using namespace std::chrono_literals;

namespace {

std::vector<uint8_t> key_of(uint8_t first) {
  std::vector<uint8_t> key(wire::key_bytes);
  for (size_t i = 0; i < key.size(); ++i) key[i] = uint8_t(first + 7 * i);
  return key;
}

std::string hex_of(const std::vector<uint8_t>& key) {
  std::string out;
  char buf[3];
  for (uint8_t b : key) {
    std::snprintf(buf, sizeof buf, "%02x", b);
    out += buf;
  }
  return out;
}

const std::vector<uint8_t> admin_key = key_of(0x11);  // client 1: everything
const std::vector<uint8_t> reader_key = key_of(0x22); // client 2: lookups only
const std::vector<uint8_t> clerk_key = key_of(0x33);  // client 3: ledger 1 only
const std::vector<uint8_t> bench_key = key_of(0x44);  // client 4: the shadow store only

// kassad with access required and three clients; client 3's key is in a file of mode 600.
// `extra`: more configuration (another section).
struct secured_kassad {
  temp_dir keys;
  std::string clerk_key_file = keys.path() + "/clerk.key";
  std::unique_ptr<kassad_instance> k;

  explicit secured_kassad(const std::string& extra = "") {
    std::ofstream(clerk_key_file) << hex_of(clerk_key) << "\n";
    ::chmod(clerk_key_file.c_str(), 0600);
    k = std::make_unique<kassad_instance>(
        "access:\n"
        "  required: true\n"
        "  clients:\n"
        "    - id: 1\n"
        "      key: \"" + hex_of(admin_key) + "\"\n"
        "    - id: 2\n"
        "      key: \"" + hex_of(reader_key) + "\"\n"
        "      operations: [lookup_accounts, lookup_transfers]\n"
        "    - id: 3\n"
        "      key_file: " + clerk_key_file + "\n"
        "      ledgers: [1]\n"
        "    - id: 4\n"
        "      key: \"" + hex_of(bench_key) + "\"\n"
        "      stores: [shadow]\n" +
        extra);
  }

  client::blocking_client as(uint64_t id, const std::vector<uint8_t>& key) const {
    client::options o;
    o.client_id = id;
    o.key = key;
    return k->connect(o);
  }
};

// Accounts 1, 2 on ledger 1 and 11, 12 on ledger 2 (12 keeps history); 100 moved 1 -> 2 and
// 200 moved 11 -> 12.
void seed_accounts(client::blocking_client& admin) {
  REQUIRE(admin.create_accounts({make_account(1, 1), make_account(2, 1), make_account(11, 2),
                                 make_account(12, 2, account_history)})
              .empty());
  REQUIRE(admin.create_transfers({make_transfer(100, 1, 2, 100, 0, 1), make_transfer(200, 11, 12, 200, 0, 2)})
              .empty());
}

// Posted balances of accounts 1, 2, 11, 12, read by the admin.
std::vector<u128> balances(client::blocking_client& admin) {
  std::vector<u128> out;
  for (const auto& a : admin.lookup_accounts({1, 2, 11, 12})) {
    out.push_back(a.debits_posted);
    out.push_back(a.credits_posted);
  }
  return out;
}

// The payment core on ledgers 1 and 2. The tests pay from balances and refund those pays,
// which never call a provider: nobody listens at alpha's address.
const std::string payments_section =
    "payments:\n"
    "  enabled: true\n"
    "  ledgers: [{ledger: 1, currency: USD}, {ledger: 2, currency: EUR}]\n"
    "  providers:\n"
    "    - {name: alpha, url: \"http://127.0.0.1:9/p/alpha\", ledgers: [1, 2], events_poll_ms: 0,\n"
    "       statement_poll_ms: 0}\n"
    "  reconciliation: {enabled: false}\n";

namespace lp = ledger::payments;

lp::payment_command create_order(u128 key, u128 order_id, u128 merchant, u128 amount, uint32_t ledger) {
  lp::payment_command c{};
  c.key = key;
  c.order_id = order_id;
  c.account_id = merchant;
  c.amount = amount;
  c.ledger = ledger;
  c.kind = uint16_t(lp::kind::create_order);
  return c;
}

lp::payment_command pay_from_balance(u128 key, u128 order_id, u128 payer, u128 amount) {
  lp::payment_command c{};
  c.key = key;
  c.order_id = order_id;
  c.account_id = payer;
  c.amount = amount;
  c.kind = uint16_t(lp::kind::pay);
  c.source = uint16_t(lp::source::balance);
  return c;
}

lp::payment_command refund(u128 key, u128 order_id, u128 amount) {
  lp::payment_command c{};
  c.key = key;
  c.order_id = order_id;
  c.amount = amount;
  c.kind = uint16_t(lp::kind::refund);
  return c;
}

// The result of each reply, by name.
std::vector<std::string> results_of(const std::vector<lp::payment_reply>& replies) {
  std::vector<std::string> out;
  for (const auto& r : replies) out.emplace_back(lp::name(lp::payment_result(r.result)));
  return out;
}
using names = std::vector<std::string>;

template <class F>
wire::status status_of(F&& call) {
  try {
    call();
  } catch (const client::error& e) {
    if (e.kind == client::error_kind::status) return e.status;
    throw;
  }
  return wire::status::ok;
}

// A TCP relay on 127.0.0.1 between one client and kassad that keeps every byte the client
// sends, so a test can look for the key in them.
class capturing_relay {
public:
  explicit capturing_relay(uint16_t target) {
    listener_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::bind(listener_, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
    REQUIRE(::listen(listener_, 1) == 0);
    socklen_t len = sizeof a;
    ::getsockname(listener_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
    thread_ = std::thread([this, target] { run(target); });
  }
  ~capturing_relay() {
    stop_ = true;
    thread_.join();
    ::close(listener_);
  }
  uint16_t port() const { return port_; }
  std::vector<uint8_t> sent() {
    std::lock_guard<std::mutex> lock(mutex_);
    return sent_;
  }

private:
  void run(uint16_t target) {
    pollfd p{listener_, POLLIN, 0};
    while (!stop_ && ::poll(&p, 1, 50) == 0) {
    }
    if (stop_) return;
    const int in = ::accept4(listener_, nullptr, nullptr, SOCK_CLOEXEC);
    const int out = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons(target);
    if (::connect(out, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
      ::close(in);
      ::close(out);
      return;
    }
    pollfd fds[2] = {{in, POLLIN, 0}, {out, POLLIN, 0}};
    uint8_t buffer[65536];
    while (!stop_) {
      if (::poll(fds, 2, 50) <= 0) continue;
      bool closed = false;
      for (int i = 0; i < 2; ++i) {
        if ((fds[i].revents & (POLLIN | POLLHUP | POLLERR)) == 0) continue;
        const ssize_t n = ::read(fds[i].fd, buffer, sizeof buffer);
        if (n <= 0) {
          closed = true;
          break;
        }
        if (i == 0) {
          std::lock_guard<std::mutex> lock(mutex_);
          sent_.insert(sent_.end(), buffer, buffer + n);
        }
        for (ssize_t done = 0; done < n;) {
          const ssize_t w = ::write(fds[1 - i].fd, buffer + done, size_t(n - done));
          if (w <= 0) break;
          done += w;
        }
      }
      if (closed) break;
    }
    ::close(in);
    ::close(out);
  }

  int listener_ = -1;
  uint16_t port_ = 0;
  std::atomic<bool> stop_{false};
  std::thread thread_;
  std::mutex mutex_;
  std::vector<uint8_t> sent_;
};

bool contains(const std::vector<uint8_t>& haystack, const uint8_t* needle, size_t n) {
  return std::search(haystack.begin(), haystack.end(), needle, needle + n) != haystack.end();
}

// A plain socket speaking frames, for what the C++ client never sends.
class raw_connection {
public:
  explicit raw_connection(uint16_t port) {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons(port);
    REQUIRE(::connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
  }
  ~raw_connection() { ::close(fd_); }

  void send(wire::operation op, uint64_t request_id, uint64_t client_id, const void* body, size_t bytes) {
    wire::header h;
    h.op = op;
    h.request_id = request_id;
    h.event_count = 1;
    h.ctx.client_id = client_id;
    std::vector<uint8_t> frame;
    wire::encode(frame, h, body, bytes);
    REQUIRE(::write(fd_, frame.data(), frame.size()) == ssize_t(frame.size()));
  }

  // The next reply, or nothing when the server closed the connection.
  std::optional<wire::decoded> receive(std::vector<uint8_t>& storage) {
    const wire::limits l{1u << 20, 8190, true};
    for (;;) {
      const wire::decoded d = wire::decode(storage.data(), storage.size(), l);
      if (d.outcome == wire::decode_outcome::frame) return d;
      REQUIRE(d.outcome == wire::decode_outcome::need_more);
      pollfd p{fd_, POLLIN, 0};
      REQUIRE(::poll(&p, 1, 10000) == 1);
      uint8_t buffer[4096];
      const ssize_t n = ::read(fd_, buffer, sizeof buffer);
      if (n <= 0) return std::nullopt;
      storage.insert(storage.end(), buffer, buffer + n);
    }
  }

private:
  int fd_ = -1;
};

} // namespace

TEST_CASE("with access required, a request before authenticating is unauthenticated and changes nothing", "[e2e][access]") {
  secured_kassad s;
  auto admin = s.as(1, admin_key);
  seed_accounts(admin);
  const auto before = balances(admin);

  auto anonymous = s.k->connect(); // no key: hello only
  CHECK(anonymous.async().server_limits().access_flags == (wire::access_required | wire::access_available));
  CHECK(status_of([&] { anonymous.create_transfers({make_transfer(101, 1, 2, 5, 0, 1)}); }) ==
        wire::status::unauthenticated);
  CHECK(status_of([&] { anonymous.create_accounts({make_account(3, 1)}); }) == wire::status::unauthenticated);
  CHECK(status_of([&] { anonymous.lookup_accounts({1}); }) == wire::status::unauthenticated);
  // Naming a client in the header is not authenticating as it.
  wire::context claims_admin;
  claims_admin.client_id = 1;
  CHECK(status_of([&] { anonymous.create_transfers({make_transfer(102, 1, 2, 5, 0, 1)}, claims_admin); }) ==
        wire::status::unauthenticated);

  CHECK(balances(admin) == before);
  CHECK(admin.lookup_transfers({101, 102}).empty());
  CHECK(admin.lookup_accounts({3}).empty());
}

TEST_CASE("a wrong key or an unknown client fails authentication; the right key works", "[e2e][access]") {
  secured_kassad s;
  {
    client::blocking_client wrong = [&] {
      client::options o;
      o.client_id = 1;
      o.key = reader_key;
      return client::blocking_client(o);
    }();
    try {
      wrong.connect("127.0.0.1", s.k->port());
      FAIL("connected with a wrong key");
    } catch (const client::error& e) {
      CHECK(e.kind == client::error_kind::status);
      CHECK(e.status == wire::status::authentication_failed);
    }
  }
  {
    client::options o;
    o.client_id = 99;
    o.key = admin_key;
    client::blocking_client unknown(o);
    CHECK(status_of([&] { unknown.connect("127.0.0.1", s.k->port()); }) == wire::status::authentication_failed);
  }
  auto admin = s.as(1, admin_key);
  REQUIRE(admin.async().authenticated() != nullptr);
  CHECK(admin.async().authenticated()->ledgers_count == 0);
  seed_accounts(admin);
  CHECK(admin.lookup_accounts({1, 2}).size() == 2);
  // The key from a file of mode 600 works too.
  auto clerk = s.as(3, clerk_key);
  CHECK(clerk.async().authenticated()->ledgers_count == 1);
  CHECK(clerk.lookup_accounts({1}).size() == 1);
  CHECK(s.k->wait_for_output("msg=\"client authenticated\" client_id=3"));
}

TEST_CASE("after authentication_failures_max failed attempts the server closes the connection", "[e2e][access]") {
  secured_kassad s;
  raw_connection raw(s.k->port());
  std::vector<uint8_t> in;
  wire::hello_request hello;
  raw.send(wire::operation::hello, 1, 0, &hello, sizeof hello);
  auto d = raw.receive(in);
  REQUIRE(d);
  wire::hello_reply hr;
  std::memcpy(&hr, d->body, sizeof hr);
  CHECK(hr.access_flags == (wire::access_required | wire::access_available));
  CHECK(std::any_of(std::begin(hr.server_nonce), std::end(hr.server_nonce), [](uint8_t b) { return b != 0; }));
  in.erase(in.begin(), in.begin() + long(d->consumed));
  for (uint64_t attempt = 1; attempt <= 3; ++attempt) {
    wire::authenticate_request bad;
    bad.client_id = 1;
    bad.proof[0] = uint8_t(attempt); // not the MAC
    raw.send(wire::operation::authenticate, 1 + attempt, 1, &bad, sizeof bad);
    d = raw.receive(in);
    REQUIRE(d);
    CHECK(d->h.request_id == 1 + attempt);
    CHECK(d->h.st == wire::status::authentication_failed);
    in.erase(in.begin(), in.begin() + long(d->consumed));
  }
  CHECK_FALSE(raw.receive(in)); // closed
  CHECK(s.k->wait_for_output("msg=\"authentication failed\" client_id=1"));
}

TEST_CASE("an operation outside the client's list is forbidden and changes nothing", "[e2e][access]") {
  secured_kassad s;
  auto admin = s.as(1, admin_key);
  seed_accounts(admin);
  const auto before = balances(admin);
  auto reader = s.as(2, reader_key);
  CHECK(reader.lookup_accounts({1, 11}).size() == 2);
  CHECK(reader.lookup_transfers({100}).size() == 1);
  CHECK(status_of([&] { reader.create_transfers({make_transfer(103, 1, 2, 5, 0, 1)}); }) == wire::status::forbidden);
  CHECK(status_of([&] { reader.create_accounts({make_account(4, 1)}); }) == wire::status::forbidden);
  wire::filter f;
  f.account_id = 12;
  f.limit = 10;
  CHECK(status_of([&] { reader.get_account_balances(f); }) == wire::status::forbidden);
  // the case desk is not in the default list: even the admin must be given it by name
  wire::cases_filter cf;
  cf.limit = 1;
  CHECK(status_of([&] { admin.get_cases(cf); }) == wire::status::forbidden);
  ledger::store::recon_resolution r;
  r.case_id = 1;
  r.action = 1;
  r.note[0] = 'x';
  CHECK(status_of([&] { admin.resolve_case(r); }) == wire::status::forbidden);
  CHECK(balances(admin) == before);
  CHECK(admin.lookup_transfers({103}).empty());
  CHECK(admin.lookup_accounts({4}).empty());
}

TEST_CASE("a request naming a ledger the client may not use is forbidden as a whole; lookups hide that ledger", "[e2e][access]") {
  secured_kassad s;
  auto admin = s.as(1, admin_key);
  seed_accounts(admin);
  const auto before = balances(admin);
  auto clerk = s.as(3, clerk_key);

  // One event on ledger 2 refuses the batch: the ledger 1 transfer before it is not applied.
  CHECK(status_of([&] {
          clerk.create_transfers({make_transfer(104, 1, 2, 5, 0, 1), make_transfer(105, 11, 12, 5, 0, 2)});
        }) == wire::status::forbidden);
  CHECK(status_of([&] { clerk.create_accounts({make_account(13, 2)}); }) == wire::status::forbidden);
  // A post that leaves the ledger out must state it.
  CHECK(status_of([&] { clerk.create_transfers({make_resolve(106, 100, transfer_post_pending)}); }) ==
        wire::status::forbidden);
  CHECK(balances(admin) == before);
  CHECK(admin.lookup_transfers({104, 105, 106}).empty());
  CHECK(admin.lookup_accounts({13}).empty());

  // Its own ledger works, and reads see only it.
  CHECK(clerk.create_transfers({make_transfer(107, 1, 2, 5, 0, 1)}).empty());
  const auto accounts = clerk.lookup_accounts({1, 11, 2, 12});
  REQUIRE(accounts.size() == 2);
  CHECK(accounts[0].id == 1);
  CHECK(accounts[1].id == 2);
  CHECK(clerk.lookup_transfers({100, 200, 107}).size() == 2);
  wire::filter f;
  f.account_id = 12;
  f.limit = 10;
  CHECK(clerk.get_account_balances(f).empty());
  CHECK(clerk.get_account_transfers(f).empty());
  CHECK(admin.get_account_balances(f).size() == 1);
  CHECK(admin.get_account_transfers(f).size() == 1);
  f.account_id = 1;
  CHECK(clerk.get_account_transfers(f).size() == 2);
}

TEST_CASE("a client limited to ledgers pays and refunds orders of its ledgers; another ledger's order is "
          "ledger_forbidden and changes nothing",
          "[e2e][access][payments]") {
  secured_kassad s(payments_section);
  auto admin = s.as(1, admin_key);
  seed_accounts(admin); // payers: 2 (ledger 1) holds 100, 12 (ledger 2) holds 200
  REQUIRE(admin.create_accounts({make_account(3, 1), make_account(13, 2)}).empty()); // merchants
  CHECK(results_of(admin.submit_payments({create_order(1000, 500, 3, 60, 1), create_order(1001, 600, 13, 60, 2)})) ==
        names{"ok", "ok"});
  auto clerk = s.as(3, clerk_key);

  // An order of its own ledger: paid in full, then partly refunded.
  auto r = clerk.submit_payments({pay_from_balance(1010, 500, 2, 60)});
  REQUIRE(results_of(r) == names{"ok"});
  CHECK(r[0].state == uint16_t(lp::order_state::completed));
  CHECK(results_of(clerk.submit_payments({refund(1011, 500, 20)})) == names{"ok"});
  auto mine = clerk.lookup_orders({500, 1010, 1011}); // the order, its pay item and its refund
  REQUIRE(mine.size() == 3);
  CHECK(mine[0].amount_captured == 60);
  CHECK(mine[0].amount_refunded == 20);
  CHECK(mine[0].state == uint16_t(lp::order_state::partially_refunded));
  CHECK(admin.lookup_accounts({2})[0].credits_posted - admin.lookup_accounts({2})[0].debits_posted == 60);
  // An order that does not exist is not found, as for any client.
  CHECK(results_of(clerk.submit_payments({pay_from_balance(1040, 999, 2, 1)})) == names{"order_not_found"});

  // An order of ledger 2: each pay and refund on it is refused, the others in the request are
  // carried out.
  auto ledger_2 = [&admin] {
    std::vector<u128> out;
    for (const auto& a : admin.lookup_accounts({11, 12, 13})) {
      out.push_back(a.debits_posted);
      out.push_back(a.credits_posted);
      out.push_back(a.debits_pending);
    }
    return out;
  };
  const auto ledger_2_before = ledger_2();
  const auto order_before = admin.lookup_orders({600});
  REQUIRE(order_before.size() == 1);
  r = clerk.submit_payments({pay_from_balance(1020, 600, 12, 60), refund(1021, 600, 10), refund(1012, 500, 10)});
  CHECK(results_of(r) == names{"ledger_forbidden", "ledger_forbidden", "ok"});
  CHECK(r[0].order_id == 600);
  // Nothing of them changed: the order row, its items, the balances; and it stays hidden.
  const auto order_after = admin.lookup_orders({600});
  REQUIRE(order_after.size() == 1);
  CHECK(std::memcmp(&order_after[0], &order_before[0], sizeof(lp::order)) == 0);
  CHECK(admin.lookup_orders({1020, 1021}).empty());
  CHECK(ledger_2() == ledger_2_before);
  CHECK(clerk.lookup_orders({600, 1020, 1021}).empty());
  // Their keys were not stored: the same commands from a client of every ledger are carried
  // out, not answered `exists`.
  r = admin.submit_payments({pay_from_balance(1020, 600, 12, 60)});
  CHECK(results_of(r) == names{"ok"});
  CHECK(r[0].state == uint16_t(lp::order_state::completed));
  CHECK(results_of(admin.submit_payments({refund(1021, 600, 10)})) == names{"ok"});
  const auto paid = admin.lookup_orders({600, 1020, 1021});
  REQUIRE(paid.size() == 3);
  CHECK(paid[0].amount_captured == 60);
  CHECK(paid[0].amount_refunded == 10);
  CHECK(results_of(admin.submit_payments({refund(1021, 600, 10)})) == names{"exists"});
  // Now that the keys are stored, the limited client's repeat is still refused: it learns
  // nothing of another ledger's keys.
  CHECK(results_of(clerk.submit_payments({pay_from_balance(1020, 600, 12, 60), refund(1021, 600, 10)})) ==
        names{"ledger_forbidden", "ledger_forbidden"});
  CHECK(clerk.lookup_orders({600, 1020, 1021}).empty());

  // A command that names another ledger still refuses its whole request.
  CHECK(status_of([&] { clerk.submit_payments({refund(1013, 500, 1), create_order(1030, 700, 13, 5, 2)}); }) ==
        wire::status::forbidden);
  CHECK(admin.lookup_orders({1013, 700}).empty());
  mine = clerk.lookup_orders({500});
  REQUIRE(mine.size() == 1);
  CHECK(mine[0].amount_refunded == 30);
}

TEST_CASE("a load tester with stores [shadow] moves shadow money only; other clients may not use the shadow store",
          "[e2e][access][shadow]") {
  secured_kassad s;
  auto admin = s.as(1, admin_key);
  seed_accounts(admin);
  client::options o;
  o.client_id = 4;
  o.key = bench_key;
  o.shadow = true;
  auto bench = s.k->connect(o);
  CHECK(bench.create_accounts({make_account(1), make_account(2)}).empty());
  CHECK(bench.create_transfers({make_transfer(100, 1, 2, 999)}).empty()); // id 100 exists only in the real store
  REQUIRE(bench.lookup_accounts({1}).size() == 1);
  CHECK(bench.lookup_accounts({1})[0].debits_posted == 999);
  CHECK(bench.lookup_accounts({11}).empty()); // a real account, not in the shadow store
  // without the flag the same client is refused, and changes nothing
  auto refused = [&](const std::function<void()>& request) {
    try {
      request();
    } catch (const client::error& e) {
      return e.status == wire::status::forbidden;
    }
    return false;
  };
  client::options plain = o;
  plain.shadow = false;
  auto bench_real = s.k->connect(plain);
  CHECK(refused([&] { bench_real.lookup_accounts({1}); }));
  CHECK(refused([&] { bench_real.create_transfers({make_transfer(300, 1, 2, 5)}); }));
  CHECK(admin.lookup_transfers({300}).empty());
  CHECK(admin.lookup_accounts({1})[0].debits_posted == 100);
  // the admin has the default stores: the real one only
  wire::context shadow;
  shadow.shadow = true;
  CHECK(refused([&] { admin.lookup_accounts({1}, shadow); }));
}

TEST_CASE("after authenticating, a frame naming another client is unauthenticated", "[e2e][access]") {
  secured_kassad s;
  auto admin = s.as(1, admin_key);
  seed_accounts(admin);
  const auto before = balances(admin);
  auto clerk = s.as(3, clerk_key);
  wire::context as_admin;
  as_admin.client_id = 1;
  CHECK(status_of([&] { clerk.create_transfers({make_transfer(108, 11, 12, 5, 0, 2)}, as_admin); }) ==
        wire::status::unauthenticated);
  CHECK(balances(admin) == before);
}

TEST_CASE("the key never crosses the network", "[e2e][access]") {
  secured_kassad s;
  capturing_relay relay(s.k->port());
  client::options o;
  o.client_id = 1;
  o.key = admin_key;
  client::blocking_client c(o);
  c.connect("127.0.0.1", relay.port());
  seed_accounts(c);
  c.close();
  const auto sent = relay.sent();
  REQUIRE(sent.size() > 3 * wire::header_bytes);
  // No 8 bytes of the key, raw or as hex text, in anything the client sent.
  const std::string key_hex = hex_of(admin_key);
  for (size_t at = 0; at + 8 <= admin_key.size(); ++at) {
    CHECK_FALSE(contains(sent, admin_key.data() + at, 8));
    CHECK_FALSE(contains(sent, reinterpret_cast<const uint8_t*>(key_hex.data()) + 2 * at, 16));
  }
}

TEST_CASE("kassa authenticates with --client-id and --client-key-file and explains a refusal", "[e2e][access]") {
  secured_kassad s;
  auto admin = s.as(1, admin_key);
  seed_accounts(admin);
  const std::string address = "--address=" + s.k->address();
  std::string out;
  CHECK(run({KASSA_CLI, "lookup-account", "1", address}, out) == 5);
  CHECK(out.find("unauthenticated") != std::string::npos);
  CHECK(run({KASSA_CLI, "lookup-account", "1", address, "--client-id", "3", "--client-key-file", s.clerk_key_file}, out) == 0);
  CHECK(out.find("account 1 ") != std::string::npos);
  CHECK(run({KASSA_CLI, "transfer", "--id", "109", "--from", "11", "--to", "12", "--amount", "1", "--ledger", "2",
             "--code", "1", address, "--client-id", "3", "--client-key-file", s.clerk_key_file},
            out) == 5);
  CHECK(out.find("forbidden") != std::string::npos);
  CHECK(run({KASSA_CLI, "lookup-account", "1", address, "--client-id", "1", "--client-key", hex_of(reader_key)}, out) == 5);
  CHECK(out.find("authentication_failed") != std::string::npos);
  CHECK(admin.lookup_transfers({109}).empty());
}
