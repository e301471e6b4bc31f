#pragma once
// The data directory: one LMDB environment per shard in `shard-NNN/`, the directory's saga log
// in `sagas/` (stores of more than one shard), and a lock file that keeps a second kassad (or
// an offline `kassa verify`) away from a store that is in use.
#include <cstdint>
#include <string>
#include <vector>

namespace kassa::runtime {

std::string shard_path(const std::string& data_dir, uint32_t shard);

// `<data_dir>/sagas`: the LMDB environment of the directory's saga log.
std::string saga_log_path(const std::string& data_dir);

// The numbers of the shard-NNN/ directories below `data_dir` that hold data (a non-empty
// LMDB data file), sorted.
std::vector<uint32_t> shards_with_data(const std::string& data_dir);

// Empty when a store of `shards` shards may start on `data_dir`: no shard holds data yet, or
// exactly shard-000 .. shard-<shards - 1> do. Otherwise the reason, for the operator: a
// different count would map accounts to other shards than the ones holding them.
std::string shard_count_mismatch(const std::string& data_dir, uint32_t shards);

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
