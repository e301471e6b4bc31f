// The configuration as a whole: its sections (one file each), the rules across them, and
// loading a file.
#include "config/config.hpp"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <unistd.h>

#include "config/sections.hpp"

namespace kassa::config {
namespace {

using namespace detail;

// A configuration file is a page of YAML; anything this large is the wrong file.
constexpr size_t file_bytes_max = 1u << 20;

// A frame is a header of at most this many bytes followed by fixed-size event records. These
// mirror the wire format (docs/protocol.md) without depending on it.
constexpr uint64_t frame_header_bytes_max = 256;
constexpr uint64_t event_bytes = 128;

parse_fn top_level(config& c) {
  return section({
      {"server", optional, server_section(c.server)},
      {"store", required, store_section(c.store)},
      {"batching", optional, batching_section(c.batching)},
      {"hot_accounts", optional, hot_accounts_section(c.hot_accounts)},
      {"log", optional, log_section(c.log)},
      {"metrics", optional, metrics_section(c.metrics)},
      {"payments", optional, payments_section(c.payments)},
      {"access", optional, access_section(c.access)},
      {"shadow", optional, shadow_section(c.shadow)},
  });
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
  const place metrics_port = r.find("metrics.port");
  const place server_port = r.find("server.port");
  if (c.metrics.enabled && c.metrics.port != 0 && c.metrics.port == c.server.port) {
    if (later(server_port, metrics_port)) {
      r.fail(server_port, "must differ from metrics.port = " + std::to_string(c.metrics.port));
    }
    r.fail(metrics_port, "must differ from server.port = " + std::to_string(c.server.port));
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
  check_payments(r, c.payments, source);
  check_access(r, c.access);
  check_shadow(r, c.shadow, c);
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

} // namespace kassa::config
