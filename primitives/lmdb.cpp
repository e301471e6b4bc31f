#include "primitives/lmdb.hpp"

namespace kassa::lmdb {

int env_open(MDB_env*& env, const std::string& path, unsigned flags, unsigned tables_max,
             uint64_t map_size_bytes, mdb_mode_t mode) {
  env = nullptr;
  int rc = mdb_env_create(&env);
  if (rc != 0) {
    env = nullptr;
    return rc;
  }
  if ((rc = mdb_env_set_maxdbs(env, tables_max)) != 0) return rc;
  if (map_size_bytes != 0 && (rc = mdb_env_set_mapsize(env, map_size_bytes)) != 0) return rc;
  return mdb_env_open(env, path.c_str(), flags, mode);
}

} // namespace kassa::lmdb
