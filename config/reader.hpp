#pragma once
// Table-driven reading of YAML maps into config structs. A section is a list of fields, each a
// key and a parse function; read_map() does the checks every section shares (unknown and
// duplicate keys, missing required keys, wrong types) so a new section is a few lines.
#include <cstdint>
#include <functional>
#include <limits>
#include <map>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include <yaml-cpp/yaml.h>

namespace kassa::config::detail {

// Where a key sits in the file: its full dotted path and 1-based line and column.
struct place {
  std::string path;
  int line = 0;
  int column = 0;
};

place child(const place& parent, std::string_view key, const YAML::Mark& mark);

class reader {
public:
  explicit reader(std::string source) : source_(std::move(source)) {}

  [[noreturn]] void fail(const place& at, const std::string& message) const;

  // Every key read so far, so that cross-field rules can blame the key written later.
  void remember(const place& at) { places_[at.path] = at; }
  // The place of a key, or line 0 if the file does not set it.
  place find(const std::string& path) const;

private:
  std::string source_;
  std::map<std::string, place> places_;
};

using parse_fn = std::function<void(reader&, const YAML::Node& value, const place& at)>;

enum presence { optional, required };

struct field {
  std::string_view key;
  presence need;
  parse_fn parse;
};

// Reads the map at `at` in file order (a null value counts as an empty map): unknown and
// duplicate keys, wrong types and out-of-range values fail at their own line; a missing
// required key fails at the line of its parent.
void read_map(reader& r, const YAML::Node& map, const place& at, const std::vector<field>& fields);

// The text of a non-empty scalar; `expected` names the wanted type in the error.
std::string read_scalar(reader& r, const YAML::Node& value, const place& at,
                        std::string_view expected);
// A plain decimal integer in [min, max], parsed strictly: no sign, fraction, exponent, leading
// zero or overflow.
uint64_t read_unsigned(reader& r, const YAML::Node& value, const place& at, uint64_t min,
                       uint64_t max);

// A nested section: its value is a map read with read_map().
parse_fn section(std::vector<field> fields);
parse_fn text(std::string& out);
// `true` or `false`, plain (no quotes); YAML 1.1's yes/no/on/off are refused as ambiguous.
parse_fn boolean(bool& out);

// Reads a list item by item, each at its own place `<key>[<index>]` (a null value is an empty
// list); `expected` names the wanted items in the error when the value is not a list.
using item_fn = std::function<void(reader&, const YAML::Node& item, const place& at)>;
void read_list(reader& r, const YAML::Node& list, const place& at, std::string_view expected,
               const item_fn& item);

template <class T> parse_fn integer(T& out, uint64_t min, uint64_t max) {
  static_assert(std::is_unsigned_v<T>);
  if (min > max || max > std::numeric_limits<T>::max()) throw std::logic_error("bad range");
  return [&out, min, max](reader& r, const YAML::Node& value, const place& at) {
    out = static_cast<T>(read_unsigned(r, value, at, min, max));
  };
}

template <class E> using names = std::vector<std::pair<std::string_view, E>>;

std::string list_names(const std::vector<std::string_view>& words);

template <class E> parse_fn one_of(E& out, const names<E>& table) {
  return [&out, &table](reader& r, const YAML::Node& value, const place& at) {
    std::string word = read_scalar(r, value, at, "one of the words");
    std::vector<std::string_view> words;
    for (const auto& [name, e] : table) {
      if (name == word) {
        out = e;
        return;
      }
      words.push_back(name);
    }
    r.fail(at, "'" + word + "' is not one of: " + list_names(words));
  };
}

} // namespace kassa::config::detail
