// The access section: clients, their keys, and what each may do.
#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config/sections.hpp"

namespace kassa::config {
namespace {

using namespace detail;

const std::vector<std::pair<std::string_view, uint16_t>> access_operations = {
    {"create_accounts", 2},       {"create_transfers", 3},     {"lookup_accounts", 4},
    {"lookup_transfers", 5},      {"get_account_transfers", 6}, {"get_account_balances", 7},
    {"submit_payments", 8},       {"lookup_orders", 9},          {"get_cases", 11},
    {"resolve_case", 12},         {"lookup_order_items", 21},
};

int hex_value(char ch) {
  if (ch >= '0' && ch <= '9') return ch - '0';
  if (ch >= 'a' && ch <= 'f') return ch - 'a' + 10;
  if (ch >= 'A' && ch <= 'F') return ch - 'A' + 10;
  return -1;
}

// A key is 32 bytes written as 64 hex digits; an all-zero key is a placeholder, not a secret.
// Returns "" or what is wrong. The key itself never appears in a message.
std::string parse_key(const std::string& text, uint8_t (&out)[access_key_bytes]) {
  const std::string expected = "expected 64 hex digits (32 bytes), e.g. from `openssl rand -hex 32`";
  if (text.size() != 2 * access_key_bytes) {
    return expected + ", got " + std::to_string(text.size()) + " characters";
  }
  uint8_t any = 0;
  for (size_t i = 0; i < access_key_bytes; ++i) {
    const int hi = hex_value(text[2 * i]), lo = hex_value(text[2 * i + 1]);
    if (hi < 0 || lo < 0) return expected + ", got a character that is not a hex digit";
    out[i] = uint8_t(hi << 4 | lo);
    any |= out[i];
  }
  if (any == 0) return "is all zero; generate a random key, e.g. `openssl rand -hex 32`";
  return "";
}

parse_fn access_key(access_client& c) {
  return [&c](reader& r, const YAML::Node& value, const place& at) {
    const std::string problem = parse_key(read_scalar(r, value, at, "a key (64 hex digits)"), c.key);
    if (!problem.empty()) r.fail(at, problem);
  };
}

// The key read from a file that only its owner may read (the file holds 64 hex digits and
// optional trailing white space), so that the YAML itself holds no secret.
parse_fn access_key_file(access_client& c) {
  return [&c](reader& r, const YAML::Node& value, const place& at) {
    c.key_file = read_scalar(r, value, at, "a file path");
    int fd = ::open(c.key_file.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) r.fail(at, "cannot read '" + c.key_file + "': " + std::strerror(errno));
    struct stat st {};
    const bool stat_ok = ::fstat(fd, &st) == 0;
    char buffer[256];
    ssize_t n = stat_ok && S_ISREG(st.st_mode) ? ::read(fd, buffer, sizeof buffer) : -1;
    ::close(fd);
    if (!stat_ok || !S_ISREG(st.st_mode)) r.fail(at, "'" + c.key_file + "' is not a regular file");
    if ((st.st_mode & 077) != 0) {
      char mode[8];
      std::snprintf(mode, sizeof mode, "%03o", unsigned(st.st_mode & 0777));
      r.fail(at, "'" + c.key_file + "' may be read by others (mode " + mode +
                     "); make it readable by its owner only: chmod 600 " + c.key_file);
    }
    if (n < 0) r.fail(at, "cannot read '" + c.key_file + "': " + std::strerror(errno));
    std::string text(buffer, size_t(n));
    while (!text.empty() && std::isspace(static_cast<unsigned char>(text.back()))) text.pop_back();
    const std::string problem = parse_key(text, c.key);
    if (!problem.empty()) r.fail(at, "'" + c.key_file + "': " + problem);
  };
}

parse_fn access_operation_list(uint32_t& out) {
  return [&out](reader& r, const YAML::Node& value, const place& at) {
    out = 0;
    read_list(r, value, at, "a list of operation names",
              [&](reader& r, const YAML::Node& item, const place& here) {
                const std::string name = read_scalar(r, item, here, "an operation name");
                r.remember(here);
                const auto it = std::find_if(access_operations.begin(), access_operations.end(),
                                             [&](const auto& e) { return e.first == name; });
                if (it == access_operations.end()) {
                  std::vector<std::string_view> words;
                  for (const auto& e : access_operations) words.push_back(e.first);
                  r.fail(here, "'" + name + "' is not one of: " + list_names(words) +
                                   " (hello and authenticate are always allowed)");
                }
                if ((out & (1u << it->second)) != 0) r.fail(here, "duplicate operation " + name);
                out |= 1u << it->second;
              });
    if (out == 0) {
      r.fail(at, "must list at least one operation; leave operations out to allow every operation");
    }
  };
}

const names<uint32_t> access_store_names = {
    {"real", access_store_real},
    {"shadow", access_store_shadow},
};

parse_fn access_store_list(uint32_t& out) {
  return [&out](reader& r, const YAML::Node& value, const place& at) {
    out = 0;
    read_list(r, value, at, "a list of stores (real, shadow)",
              [&](reader& r, const YAML::Node& item, const place& here) {
                uint32_t store = 0;
                one_of(store, access_store_names)(r, item, here);
                if ((out & store) != 0) r.fail(here, "duplicate store " + read_scalar(r, item, here, "a store"));
                out |= store;
              });
    if (out == 0) r.fail(at, "must list at least one store; leave stores out for the real store only");
  };
}

parse_fn access_client_list(std::vector<access_client>& out) {
  return [&out](reader& r, const YAML::Node& value, const place& at) {
    read_list(r, value, at, "a list of {id, key or key_file, ledgers, operations} maps",
              [&](reader& r, const YAML::Node& item, const place& here) {
                access_client c;
                read_map(r, item, here,
                         {
                             {"id", required, integer(c.id, 1, UINT64_MAX)},
                             {"key", optional, access_key(c)},
                             {"key_file", optional, access_key_file(c)},
                             {"ledgers", optional, client_ledgers(c.ledgers)},
                             {"operations", optional, access_operation_list(c.operations)},
                             {"stores", optional, access_store_list(c.stores)},
                         });
                const place id_at = must_find(r, here.path + ".id");
                for (size_t i = 0; i < out.size(); ++i) {
                  if (out[i].id == c.id) {
                    r.fail(id_at, "duplicate client id " +
                                      first_at(must_find(r, at.path + "[" + std::to_string(i) + "].id")));
                  }
                }
                const place key_at = r.find(here.path + ".key");
                const place file_at = r.find(here.path + ".key_file");
                if (key_at.line == 0 && file_at.line == 0) {
                  r.fail(here, "needs key (64 hex digits) or key_file (a file holding them)");
                }
                if (key_at.line != 0 && file_at.line != 0) {
                  r.fail(later(key_at, file_at) ? key_at : file_at,
                         "key and key_file exclude each other; keep one");
                }
                out.push_back(c);
              });
  };
}

} // namespace

namespace detail {

parse_fn access_section(access_config& c) {
  return section({
      {"required", optional, boolean(c.required)},
      {"authentication_failures_max", optional, integer(c.authentication_failures_max, 1, 100)},
      {"clients", optional, access_client_list(c.clients)},
  });
}

void check_access(const reader& r, const access_config& c) {
  if (c.required && c.clients.empty()) {
    r.fail(must_find(r, "access.required"),
           "is true but access.clients is empty; no client could make a request");
  }
}

} // namespace detail

const std::vector<std::pair<std::string_view, uint16_t>>& access_operation_names() {
  return access_operations;
}

} // namespace kassa::config
