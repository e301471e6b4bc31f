// Resource exhaustion end to end: a real kassad on 127.0.0.1 with small limits in its YAML.
// Each case runs out of one resource and shows a clear error (a frame status, or the
// documented close), that nothing is corrupted (`kassa verify`, balances as acknowledged),
// and that other clients are served meanwhile. Tagged [e2e][exhaustion].
#include <catch2/catch.hpp>

#include <boost/asio.hpp>
#include <fstream>
#include <optional>
#include <sys/mount.h>
#include <thread>

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
