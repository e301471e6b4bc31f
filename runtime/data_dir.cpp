#include "runtime/data_dir.hpp"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <filesystem>
#include <sys/file.h>
#include <unistd.h>

namespace kassa::runtime {

namespace fs = std::filesystem;

std::string shard_path(const std::string& data_dir, uint32_t shard) {
  char name[32];
  std::snprintf(name, sizeof name, "shard-%03u", shard);
  return (fs::path(data_dir) / name).string();
}

std::string saga_log_path(const std::string& data_dir) {
  return (fs::path(data_dir) / "sagas").string();
}

std::vector<uint32_t> shards_with_data(const std::string& data_dir) {
  std::vector<uint32_t> out;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(data_dir, ec)) {
    const std::string name = entry.path().filename().string();
    const std::string digits = name.rfind("shard-", 0) == 0 ? name.substr(6) : "";
    if (digits.empty() || digits.size() > 5 ||
        !std::all_of(digits.begin(), digits.end(), [](char c) { return c >= '0' && c <= '9'; }))
      continue;
    std::error_code size_ec;
    const auto bytes = fs::file_size(entry.path() / "data.mdb", size_ec);
    if (!size_ec && bytes > 0) out.push_back(static_cast<uint32_t>(std::stoul(digits)));
  }
  std::sort(out.begin(), out.end());
  return out;
}

std::string shard_count_mismatch(const std::string& data_dir, uint32_t shards) {
  const std::vector<uint32_t> found = shards_with_data(data_dir);
  bool same = found.size() == shards || found.empty();
  for (size_t i = 0; same && i < found.size(); ++i) same = found[i] == i;
  if (same) return "";
  auto name = [&](uint32_t shard) { return fs::path(shard_path("", shard)).filename().string(); };
  std::string holds;
  std::string fix = "start kassad with the shard count the store was created with";
  if (found.back() + 1 == found.size()) {
    fix = "set store.shards: " + std::to_string(found.size()) + " as the store was created";
    holds = std::to_string(found.size()) + " shard" + (found.size() == 1 ? "" : "s") + " (" +
            name(0) + (found.size() == 1 ? "" : " .. " + name(found.back())) + ")";
  } else {
    holds = "shards";
    for (size_t i = 0; i < found.size() && i < 8; ++i) holds += (i ? ", " : " ") + name(found[i]);
    if (found.size() > 8) holds += ", ... (" + std::to_string(found.size()) + " in all)";
  }
  return "is " + std::to_string(shards) + " but the data directory " + data_dir + " holds " +
         holds + "; changing the shard count of an existing store would move accounts between "
         "shards, which kassa does not do: " + fix + ", or start on an empty data directory";
}

std::vector<std::string> shard_paths_found(const std::string& data_dir) {
  std::error_code ec;
  if (fs::exists(fs::path(data_dir) / "data.mdb", ec)) return {data_dir};
  std::vector<std::string> out;
  for (const auto& entry : fs::directory_iterator(data_dir, ec)) {
    const std::string name = entry.path().filename().string();
    if (entry.is_directory() && name.rfind("shard-", 0) == 0) out.push_back(entry.path().string());
  }
  std::sort(out.begin(), out.end());
  return out;
}

bool make_directories(const std::string& path, std::string& error) {
  std::error_code ec;
  fs::create_directories(path, ec);
  if (ec) {
    error = "cannot create directory " + path + ": " + ec.message();
    return false;
  }
  return true;
}

bool data_lock::acquire(const std::string& data_dir, std::string& error) {
  const std::string path = (fs::path(data_dir) / "LOCK").string();
  fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd_ < 0) {
    error = "cannot open " + path + ": " + std::strerror(errno);
    return false;
  }
  if (::flock(fd_, LOCK_EX | LOCK_NB) != 0) {
    error = errno == EWOULDBLOCK
                ? "data directory " + data_dir + " is in use by another kassa process; stop it first"
                : "cannot lock " + path + ": " + std::strerror(errno);
    ::close(fd_);
    fd_ = -1;
    return false;
  }
  return true;
}

data_lock::~data_lock() {
  if (fd_ >= 0) ::close(fd_); // closing releases the lock
}

} // namespace kassa::runtime
