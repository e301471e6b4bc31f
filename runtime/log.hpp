#pragma once
// Structured log lines on stderr: `<utc time> level=<lvl> msg="<text>" key=value ...`.
// One line per event, written with a single write(2) so that lines never interleave.
#include <initializer_list>
#include <string>
#include <utility>
#include <vector>

namespace kassa::log {

enum class level { debug, info, warn, error };

void set_level(level l);
using fields = std::initializer_list<std::pair<const char*, std::string>>;
void write(level l, const std::string& msg, fields kv = {});
// The same, with fields put together at run time.
void write(level l, const std::string& msg, const std::vector<std::pair<const char*, std::string>>& kv);

inline void debug(const std::string& msg, fields kv = {}) { write(level::debug, msg, kv); }
inline void info(const std::string& msg, fields kv = {}) { write(level::info, msg, kv); }
inline void warn(const std::string& msg, fields kv = {}) { write(level::warn, msg, kv); }
inline void error(const std::string& msg, fields kv = {}) { write(level::error, msg, kv); }

} // namespace kassa::log
