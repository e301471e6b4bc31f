#pragma once
// Operating failures of the store. Success is errc::ok (0); every other error carries a
// message that says what happened and what the operator should do.
#include <string>
#include <string_view>

namespace kassa::ledger::store {

enum class errc : int {
  ok = 0,
  invalid_argument, // bad options (path, map size)
  io,               // the file system or LMDB failed: disk, permissions, fsync
  map_full,         // the LMDB map is full: raise store.map_size_mib and restart
  corrupt,          // the store contradicts itself: restore from a backup, run `kassa verify`
  version_mismatch, // the store was written by a newer or unknown format
};

std::string_view name(errc code);

struct error {
  errc code = errc::ok;
  std::string message;

  bool ok() const { return code == errc::ok; }
};

} // namespace kassa::ledger::store
