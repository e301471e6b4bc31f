#pragma once
// The data directory: one LMDB environment per shard in `shard-NNN/`, and a lock file that
// keeps a second kassad (or an offline `kassa verify`) away from a store that is in use.
#include <cstdint>
#include <string>
#include <vector>

namespace kassa::runtime {

std::string shard_path(const std::string& data_dir, uint32_t shard);

// The shard directories below `data_dir` (sorted), or `data_dir` itself when it is a shard.
std::vector<std::string> shard_paths_found(const std::string& data_dir);

// Creates `path` and its parents; false with `error` set on failure.
bool make_directories(const std::string& path, std::string& error);

// An exclusive advisory lock on `<data_dir>/LOCK`, held for the life of the object.
class data_lock {
public:
  // Returns false with `error` set when another process holds the lock or the file cannot be
  // opened.
  bool acquire(const std::string& data_dir, std::string& error);
  ~data_lock();

private:
  int fd_ = -1;
};

} // namespace kassa::runtime
