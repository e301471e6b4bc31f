#pragma once
// Reading typed fields out of a parsed JSON object without exceptions: each reader returns
// false and names the field in `error` when it is missing or of the wrong type or form.
// Shared by the protocol codec and the simulator's admin endpoints.
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "channels/protocol.hpp"
#include "channels/text.hpp"

namespace kassa::channels {

// Refuses bodies nested deeper than json_depth_max (counted outside strings) before parsing,
// then parses without exceptions; the result must be an object.
inline bool parse_object(std::string_view body, nlohmann::json& out, std::string& error) {
  size_t depth = 0;
  bool in_string = false, escaped = false;
  for (char c : body) {
    if (in_string) {
      if (escaped) escaped = false;
      else if (c == '\\') escaped = true;
      else if (c == '"') in_string = false;
    } else if (c == '"') {
      in_string = true;
    } else if (c == '{' || c == '[') {
      if (++depth > json_depth_max) {
        error = "json nested too deep";
        return false;
      }
    } else if ((c == '}' || c == ']') && depth > 0) {
      --depth;
    }
  }
  out = nlohmann::json::parse(body.begin(), body.end(), nullptr, /*allow_exceptions=*/false);
  if (out.is_discarded()) {
    error = "malformed json";
    return false;
  }
  if (!out.is_object()) {
    error = "json body is not an object";
    return false;
  }
  return true;
}

// Serialises without throwing on invalid UTF-8 (it is replaced).
inline std::string dump(const nlohmann::json& j) {
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

struct fields {
  std::string& error;

  bool fail(std::string_view key, std::string_view why) {
    error = std::string(key) + ": " + std::string(why);
    return false;
  }

  const nlohmann::json* find(const nlohmann::json& j, const char* key) {
    auto it = j.find(key);
    if (it == j.end()) {
      fail(key, "missing");
      return nullptr;
    }
    return &*it;
  }

  bool u64(const nlohmann::json& j, const char* key, uint64_t& out) {
    const nlohmann::json* v = find(j, key);
    if (!v) return false;
    if (!v->is_number_unsigned()) return fail(key, "not an unsigned integer");
    out = v->get<uint64_t>();
    return true;
  }

  bool u32(const nlohmann::json& j, const char* key, uint32_t& out) {
    uint64_t v = 0;
    if (!u64(j, key, v)) return false;
    if (v > UINT32_MAX) return fail(key, "above 2^32 - 1");
    out = static_cast<uint32_t>(v);
    return true;
  }

  bool boolean(const nlohmann::json& j, const char* key, bool& out) {
    const nlohmann::json* v = find(j, key);
    if (!v) return false;
    if (!v->is_boolean()) return fail(key, "not a boolean");
    out = v->get<bool>();
    return true;
  }

  bool text(const nlohmann::json& j, const char* key, std::string& out) {
    const nlohmann::json* v = find(j, key);
    if (!v) return false;
    if (!v->is_string()) return fail(key, "not a string");
    const auto& s = v->get_ref<const std::string&>();
    if (s.size() > text_bytes_max) return fail(key, "longer than 256 bytes");
    out = s;
    return true;
  }

  bool optional_text(const nlohmann::json& j, const char* key, std::string& out) {
    if (j.find(key) == j.end()) return true;
    return text(j, key, out);
  }

  bool id(const nlohmann::json& j, const char* key, u128& out) {
    std::string s;
    if (!text(j, key, s)) return false;
    if (!parse_id(s, out)) return fail(key, "not 32 hex digits");
    return true;
  }

  bool optional_id(const nlohmann::json& j, const char* key, u128& out) {
    if (j.find(key) == j.end()) return true;
    return id(j, key, out);
  }

  bool amount(const nlohmann::json& j, const char* key, u128& out) {
    std::string s;
    if (!text(j, key, s)) return false;
    if (!parse_amount(s, out)) return fail(key, "not a decimal string of an unsigned 128-bit amount");
    return true;
  }

  bool kind(const nlohmann::json& j, const char* key, pay_kind& out) {
    std::string s;
    if (!text(j, key, s)) return false;
    if (!parse_kind(s, out)) return fail(key, "not charge, payout or refund");
    return true;
  }

  bool status(const nlohmann::json& j, const char* key, pay_status& out) {
    std::string s;
    if (!text(j, key, s)) return false;
    if (!parse_status(s, out)) return fail(key, "not a payment status");
    return true;
  }

  const nlohmann::json* array(const nlohmann::json& j, const char* key) {
    const nlohmann::json* v = find(j, key);
    if (!v) return nullptr;
    if (!v->is_array()) {
      fail(key, "not an array");
      return nullptr;
    }
    return v;
  }
};

} // namespace kassa::channels
