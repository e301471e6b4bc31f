#include "config/config.hpp"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <tuple>
#include <unistd.h>

#include "config/reader.hpp"
#include "ledger/system_ids.hpp"

namespace kassa::config {
namespace {

using namespace detail;

// A configuration file is a page of YAML; anything this large is the wrong file.
constexpr size_t file_bytes_max = 1u << 20;
// A frame is a header of at most this many bytes followed by fixed-size event records. These
// mirror the wire format (docs/protocol.md) without depending on it.
constexpr uint64_t frame_header_bytes_max = 256;
constexpr uint64_t event_bytes = 128;

const names<durability> durability_names = {
    {"fsync", durability::fsync},
    {"none", durability::none},
};

const names<log_level> log_level_names = {
    {"debug", log_level::debug},
    {"info", log_level::info},
    {"warn", log_level::warn},
    {"error", log_level::error},
};

// One function per section; a new section is one more of these and one line in top_level().
parse_fn server_section(server_config& c) {
  return section({
      {"address", optional, text(c.address)},
      {"port", optional, integer(c.port, 0, 65535)},
      {"connections_max", optional, integer(c.connections_max, 1, 65536)},
      {"frame_bytes_max", optional, integer(c.frame_bytes_max, 256, 64u << 20)},
      {"requests_inflight_max", optional, integer(c.requests_inflight_max, 1, 4096)},
  });
}

parse_fn store_section(store_config& c) {
  return section({
      {"data_dir", required, text(c.data_dir)},
      {"durability", required, one_of(c.durability, durability_names)},
      {"map_size_mib", optional, integer(c.map_size_mib, 1, uint64_t(1) << 24)},
      {"shards", optional, integer(c.shards, 1, 256)},
      {"transfers_resident_max", optional,
       integer(c.transfers_resident_max, 1000, uint64_t(1) << 32)},
  });
}

parse_fn batching_section(batching_config& c) {
  return section({
      {"batch_events_max", optional, integer(c.batch_events_max, 1, 65535)},
      {"commit_delay_us_max", optional, integer(c.commit_delay_us_max, 0, 1000000)},
      {"commit_events_max", optional, integer(c.commit_events_max, 1, 1u << 20)},
      {"queue_events_max", optional, integer(c.queue_events_max, 1, 1u << 26)},
  });
}

// An account id: decimal or 0x-hex, plain or quoted (a 128-bit id does not fit YAML's
// integers everywhere). Ids kassa reserves are refused here, so kassad never starts with a
// rule it could not apply.
parse_fn account_id(u128& out) {
  return [&out](reader& r, const YAML::Node& value, const place& at) {
    const std::string text = read_scalar(r, value, at, "an id (decimal or 0x-hex)");
    const bool hex = text.size() > 2 && text[0] == '0' && (text[1] == 'x' || text[1] == 'X');
    const bool digits =
        !text.empty() && std::all_of(text.begin() + (hex ? 2 : 0), text.end(), [&](char ch) {
          return hex ? std::isxdigit(static_cast<unsigned char>(ch)) != 0 : ch >= '0' && ch <= '9';
        });
    if (!digits) r.fail(at, "expected an id (decimal or 0x-hex), got '" + text + "'");
    if (!hex && text.size() > 1 && text[0] == '0') {
      r.fail(at, "expected an id without leading zeros (YAML 1.1 reads them as octal), got '" +
                     text + "'");
    }
    u128 id = 0;
    if (!parse_u128(text, id)) r.fail(at, "does not fit in 128 bits, got '" + text + "'");
    if (id == 0 || id == u128_max) {
      r.fail(at, "must not be " + std::string(id == 0 ? "0" : "2^128 - 1") +
                     "; ids 0 and 2^128 - 1 are reserved");
    }
    if (ledger::system_ids::reserved(id)) {
      r.fail(at, "'" + text + "' lies in the ids kassa reserves for its own accounts (the high "
                              "64 bits 0xffffffffffffff00 and above); choose another id");
    }
    out = id;
  };
}

parse_fn hot_static_list(std::vector<hot_account_static>& out) {
  return [&out](reader& r, const YAML::Node& value, const place& at) {
    std::vector<std::pair<u128, place>> seen;
    read_list(r, value, at, "a list of {id, sub_accounts} maps",
              [&](reader& r, const YAML::Node& item, const place& here) {
                hot_account_static rule;
                read_map(r, item, here,
                         {
                             {"id", required, account_id(rule.id)},
                             {"sub_accounts", optional, integer(rule.sub_accounts, 2, 256)},
                         });
                const place id_at = r.find(here.path + ".id");
                for (const auto& [id, first] : seen) {
                  if (id == rule.id) {
                    r.fail(id_at, "duplicate id (first at " + first.path + ", line " +
                                      std::to_string(first.line) + ")");
                  }
                }
                seen.emplace_back(rule.id, id_at);
                out.push_back(rule);
              });
  };
}

parse_fn hot_adaptive_section(hot_accounts_adaptive& c) {
  return section({
      {"enabled", optional, boolean(c.enabled)},
      {"window_ms", optional, integer(c.window_ms, 1, 600000)},
      {"credits_min", optional, integer(c.credits_min, 1, 1000000000)},
      {"sub_accounts", optional, integer(c.sub_accounts, 2, 256)},
  });
}

parse_fn hot_accounts_section(hot_accounts_config& c) {
  return section({
      {"static", optional, hot_static_list(c.static_accounts)},
      {"adaptive", optional, hot_adaptive_section(c.adaptive)},
      {"sweep_interval_ms", optional, integer(c.sweep_interval_ms, 0, 3600000)},
  });
}

parse_fn log_section(log_config& c) {
  return section({
      {"level", optional, one_of(c.level, log_level_names)},
  });
}

parse_fn top_level(config& c) {
  return section({
      {"server", optional, server_section(c.server)},
      {"store", required, store_section(c.store)},
      {"batching", optional, batching_section(c.batching)},
      {"hot_accounts", optional, hot_accounts_section(c.hot_accounts)},
      {"log", optional, log_section(c.log)},
  });
}

// A rule between two keys is blamed on the one written later in the file; a key left at its
// default counts as written first.
bool later(const place& a, const place& b) {
  return std::tie(a.line, a.column) > std::tie(b.line, b.column);
}

void check_across_sections(const reader& r, const config& c) {
  const place frame = r.find("server.frame_bytes_max");
  const place batch = r.find("batching.batch_events_max");
  const place commit = r.find("batching.commit_events_max");
  const place queue = r.find("batching.queue_events_max");

  const uint64_t frame_bytes_min =
      event_bytes * c.batching.batch_events_max + frame_header_bytes_max;
  if (c.server.frame_bytes_max < frame_bytes_min) {
    if (later(frame, batch)) {
      r.fail(frame, "must be at least 128 * batching.batch_events_max + 256 = " +
                        std::to_string(frame_bytes_min) + " so that a full batch fits in a frame");
    }
    const uint64_t batch_events_fit =
        (c.server.frame_bytes_max - frame_header_bytes_max) / event_bytes;
    r.fail(batch, "must be at most (server.frame_bytes_max - 256) / 128 = " +
                      std::to_string(batch_events_fit) + " so that a full batch fits in a frame");
  }
  if (c.batching.commit_events_max < c.batching.batch_events_max) {
    if (later(commit, batch)) {
      r.fail(commit, "must be at least batching.batch_events_max = " +
                         std::to_string(c.batching.batch_events_max));
    }
    r.fail(batch, "must be at most batching.commit_events_max = " +
                      std::to_string(c.batching.commit_events_max));
  }
  if (c.batching.queue_events_max < c.batching.batch_events_max) {
    if (later(queue, batch)) {
      r.fail(queue, "must be at least batching.batch_events_max = " +
                        std::to_string(c.batching.batch_events_max) +
                        " so that a full request can wait");
    }
    r.fail(batch, "must be at most batching.queue_events_max = " +
                      std::to_string(c.batching.queue_events_max));
  }
}

int line_of(const YAML::Mark& mark) { return mark.line < 0 ? 0 : mark.line + 1; }

// The line where a second YAML document starts, or 0. A configuration is one document, and
// yaml-cpp 0.7 can allocate without bound while parsing some malformed later documents (found
// by fuzzing), so a second one is refused by its marker before any parsing. A marker is "---"
// or "..." at the start of a line; in a map-shaped file it cannot be part of a value.
int second_document_line(const std::string& yaml) {
  bool started = false; // a document's content or its "---" has been seen
  bool ended = false;   // ... and then its "..." end marker
  int line = 0;
  for (size_t begin = 0; begin < yaml.size();) {
    size_t end = std::min(yaml.find('\n', begin), yaml.size());
    const std::string_view text(yaml.data() + begin, end - begin);
    begin = end + 1;
    ++line;
    const std::string_view head = text.substr(0, 3);
    const bool marker = (head == "---" || head == "...") &&
                        (text.size() == 3 || std::isspace(static_cast<unsigned char>(text[3])));
    const size_t first = text.find_first_not_of(" \t\r");
    const bool blank = first == std::string_view::npos || text[first] == '#';
    if (marker && text[0] == '.') {
      ended = true;
    } else if (marker || !blank) {
      const bool directive = !marker && !started && text[0] == '%';
      if (ended || (marker && started)) return line;
      started = started || !directive;
    }
  }
  return 0;
}

} // namespace

config_error::config_error(std::string source_, int line_, std::string key_path_,
                           std::string message_)
    : std::runtime_error(source_ + ":" + std::to_string(line_) + ": " +
                         (key_path_.empty() ? "" : key_path_ + ": ") + message_),
      source(std::move(source_)), line(line_), key_path(std::move(key_path_)),
      message(std::move(message_)) {}

config load_string(const std::string& yaml, const std::string& source) {
  if (yaml.size() > file_bytes_max) {
    throw config_error(source, 0, "", "larger than " + std::to_string(file_bytes_max) +
                                          " bytes; is this the configuration file?");
  }
  config c;
  c.source = source;
  reader r(source);
  try {
    if (int line = second_document_line(yaml)) {
      throw config_error(source, line, "", "a second YAML document starts here; expected one");
    }
    const YAML::Node root = YAML::Load(yaml);
    if (root.IsNull()) {
      throw config_error(source, 0, "", "empty configuration; store.data_dir and "
                                        "store.durability are required");
    }
    top_level(c)(r, root, place{"", line_of(root.Mark()), 1});
  } catch (const YAML::ParserException& e) {
    throw config_error(source, line_of(e.mark), "", "YAML syntax: " + e.msg);
  } catch (const YAML::Exception& e) {
    throw config_error(source, line_of(e.mark), "", e.what());
  }
  check_across_sections(r, c);
  return c;
}

config load_file(const std::string& path) {
  auto unreadable = [&](int error) {
    return config_error(path, 0, "", std::string("cannot read the file: ") + std::strerror(error));
  };
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw unreadable(errno);
  std::string text;
  char buffer[64 * 1024];
  for (;;) {
    ssize_t n = ::read(fd, buffer, sizeof buffer);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      int error = errno;
      ::close(fd);
      throw unreadable(error);
    }
    if (n == 0) break;
    text.append(buffer, size_t(n));
    if (text.size() > file_bytes_max) break; // load_string reports it
  }
  ::close(fd);
  return load_string(text, path);
}

std::string_view to_string(durability value) {
  for (const auto& [name, e] : durability_names) {
    if (e == value) return name;
  }
  return "?";
}

std::string_view to_string(log_level value) {
  for (const auto& [name, e] : log_level_names) {
    if (e == value) return name;
  }
  return "?";
}

} // namespace kassa::config
