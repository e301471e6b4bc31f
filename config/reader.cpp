#include "config/reader.hpp"

#include <algorithm>
#include <set>

#include "config/config.hpp"

namespace kassa::config::detail {
namespace {

// What a value is, in the words of an error message.
std::string describe(const YAML::Node& value) {
  switch (value.Type()) {
  case YAML::NodeType::Map: return "a map";
  case YAML::NodeType::Sequence: return "a list";
  case YAML::NodeType::Scalar: return "'" + value.Scalar() + "'";
  default: return "nothing";
  }
}

size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diagonal = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      size_t above = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] != b[j - 1])});
      diagonal = above;
    }
  }
  return row[b.size()];
}

// The known key closest to a misspelt one, if it is close enough to be a typo.
std::string_view closest(std::string_view key, const std::vector<field>& fields) {
  std::string_view best;
  size_t best_distance = std::max<size_t>(2, key.size() / 3) + 1;
  for (const field& f : fields) {
    size_t d = edit_distance(key, f.key);
    if (d < best_distance) {
      best = f.key;
      best_distance = d;
    }
  }
  return best;
}

} // namespace

place child(const place& parent, std::string_view key, const YAML::Mark& mark) {
  std::string path = parent.path.empty() ? std::string(key) : parent.path + "." + std::string(key);
  // yaml-cpp marks are 0-based and -1 when unknown; keep the parent's line then.
  if (mark.line < 0) return {std::move(path), parent.line, parent.column};
  return {std::move(path), mark.line + 1, mark.column + 1};
}

void reader::fail(const place& at, const std::string& message) const {
  throw config_error(source_, at.line, at.path, message);
}

place reader::find(const std::string& path) const {
  auto it = places_.find(path);
  return it == places_.end() ? place{path, 0, 0} : it->second;
}

void read_map(reader& r, const YAML::Node& map, const place& at, const std::vector<field>& fields) {
  // `section:` with every key commented out is null: all defaults.
  if (!map.IsNull() && !map.IsMap()) r.fail(at, "expected a map of keys, got " + describe(map));
  std::set<std::string_view> seen;
  if (map.IsMap()) {
    // Each entry is a temporary pair of nodes: hold it by value, never a reference into it.
    for (const auto& entry : map) {
      const YAML::Node key = entry.first;
      if (!key.IsScalar()) r.fail(child(at, "?", key.Mark()), "keys must be plain words");
      place here = child(at, key.Scalar(), key.Mark());
      auto f = std::find_if(fields.begin(), fields.end(),
                            [&](const field& f) { return f.key == key.Scalar(); });
      if (f == fields.end()) {
        std::string_view hint = closest(key.Scalar(), fields);
        r.fail(here, hint.empty() ? "unknown key" : "unknown key, did you mean " +
                                                        std::string(hint) + "?");
      }
      if (!seen.insert(f->key).second) {
        r.fail(here, "duplicate key (first at line " + std::to_string(r.find(here.path).line) +
                         ")");
      }
      r.remember(here);
      f->parse(r, entry.second, here);
    }
  }
  for (const field& f : fields) {
    if (f.need == required && !seen.count(f.key)) {
      r.fail(child(at, f.key, YAML::Mark::null_mark()), "missing required key");
    }
  }
}

std::string read_scalar(reader& r, const YAML::Node& value, const place& at,
                        std::string_view expected) {
  if (!value.IsScalar()) r.fail(at, "expected " + std::string(expected) + ", got " +
                                        describe(value));
  return value.Scalar();
}

uint64_t read_unsigned(reader& r, const YAML::Node& value, const place& at, uint64_t min,
                       uint64_t max) {
  auto out_of_range = [&] {
    r.fail(at, "must be between " + std::to_string(min) + " and " + std::to_string(max) +
                   ", got " + describe(value));
  };
  std::string digits = read_scalar(r, value, at, "an integer");
  // A quoted "42" is a string in YAML; taking it as a number would hide a typo elsewhere.
  if (value.Tag() != "?") {
    r.fail(at, "expected a plain integer (no quotes), got " + describe(value));
  }
  auto is_digit = [](char c) { return c >= '0' && c <= '9'; };
  bool negative = digits.size() > 1 && digits[0] == '-' &&
                  std::all_of(digits.begin() + 1, digits.end(), is_digit);
  if (negative) out_of_range();
  bool decimal = !digits.empty() && std::all_of(digits.begin(), digits.end(), is_digit);
  if (!decimal) r.fail(at, "expected an integer, got " + describe(value));
  // A leading zero reads as octal in YAML 1.1; refuse rather than guess.
  if (digits.size() > 1 && digits[0] == '0') {
    r.fail(at, "expected a decimal integer without leading zeros, got " + describe(value));
  }
  uint64_t result = 0;
  for (char c : digits) {
    uint64_t digit = uint64_t(c - '0');
    if (result > (std::numeric_limits<uint64_t>::max() - digit) / 10) out_of_range();
    result = result * 10 + digit;
  }
  if (result < min || result > max) out_of_range();
  return result;
}

parse_fn section(std::vector<field> fields) {
  return [fields = std::move(fields)](reader& r, const YAML::Node& value, const place& at) {
    read_map(r, value, at, fields);
  };
}

parse_fn text(std::string& out) {
  return [&out](reader& r, const YAML::Node& value, const place& at) {
    out = read_scalar(r, value, at, "a string");
    if (out.empty()) r.fail(at, "must not be empty");
  };
}

parse_fn boolean(bool& out) {
  return [&out](reader& r, const YAML::Node& value, const place& at) {
    const std::string word = read_scalar(r, value, at, "true or false");
    if (value.Tag() == "?" && (word == "true" || word == "false")) {
      out = word == "true";
      return;
    }
    r.fail(at, "expected true or false, got " + describe(value));
  };
}

void read_list(reader& r, const YAML::Node& list, const place& at, std::string_view expected,
               const item_fn& item) {
  if (list.IsNull()) return;
  if (!list.IsSequence()) r.fail(at, "expected " + std::string(expected) + ", got " + describe(list));
  size_t index = 0;
  for (auto it = list.begin(); it != list.end(); ++it, ++index) {
    const YAML::Node value = *it;
    place here{at.path + "[" + std::to_string(index) + "]", at.line, at.column};
    if (value.Mark().line >= 0) {
      here.line = value.Mark().line + 1;
      here.column = value.Mark().column + 1;
    }
    item(r, value, here);
  }
}

std::string list_names(const std::vector<std::string_view>& words) {
  std::string out;
  for (std::string_view w : words) out += (out.empty() ? "" : ", ") + std::string(w);
  return out;
}

} // namespace kassa::config::detail
