#pragma once
// A flat hash table keyed by 128-bit id, for the ledger's hot lookups (accounts, resident
// transfers). Open addressing with linear probing and backward-shift deletion: no node
// allocations, no tombstones. Id 0 is never a valid key (it is reserved on the wire) and
// marks an empty slot. Pointers into the table are invalidated by insert and erase.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <sys/mman.h>
#include <type_traits>
#include <vector>

#include "primitives/assert.hpp"
#include "primitives/u128.hpp"

namespace kassa::ledger {

inline uint64_t id_hash(u128 v) {
  // splitmix finaliser over both halves: ids are client-chosen and often sequential.
  uint64_t x = u128_lo(v) ^ (u128_hi(v) * 0x9E3779B97F4A7C15ull);
  x ^= x >> 30;
  x *= 0xBF58476D1CE4E5B9ull;
  x ^= x >> 27;
  x *= 0x94D049BB133111EBull;
  x ^= x >> 31;
  return x;
}

// Zeroed memory for a hash table. Large tables live on 2 MiB-aligned memory advised for huge
// pages: a random probe into a table of hundreds of MiB then costs a cache miss but rarely a
// page walk too. Release with std::free.
inline void* table_allocate(size_t bytes) {
  constexpr size_t huge_page = 2u << 20;
  void* p = nullptr;
  if (bytes >= huge_page) {
    p = std::aligned_alloc(huge_page, (bytes + huge_page - 1) / huge_page * huge_page);
    if (p != nullptr) madvise(p, bytes, MADV_HUGEPAGE); // advice only: failure is harmless
  } else {
    p = std::malloc(bytes);
  }
  KASSA_ASSERT(p != nullptr);
  std::memset(p, 0, bytes);
  return p;
}

struct table_free {
  void operator()(void* p) const { std::free(p); }
};

// V must be trivially copyable, all-zero bytes must be its empty value, and KeyOf{}(v) gives
// its id.
template <class V, class KeyOf>
class id_map {
  static_assert(std::is_trivially_copyable_v<V>);

public:
  id_map() { rehash(16); }

  size_t size() const { return size_; }
  size_t capacity() const { return capacity_; }

  V* find(u128 id) {
    KASSA_ASSERT(id != 0);
    for (size_t i = id_hash(id) & mask_;; i = (i + 1) & mask_) {
      const u128 k = key(slots_[i]);
      if (k == id) return &slots_[i];
      if (k == 0) return nullptr;
    }
  }
  const V* find(u128 id) const { return const_cast<id_map*>(this)->find(id); }

  // Starts loading the home slot of `id` into cache: a batch calls this a few events ahead,
  // so that the lookups of a large table overlap instead of waiting for memory one by one.
  void prefetch(u128 id) const { __builtin_prefetch(&slots_[id_hash(id) & mask_]); }
  bool contains(u128 id) const { return find(id) != nullptr; }

  // Inserts `v` unless its id is present; returns the slot and whether it was inserted.
  std::pair<V*, bool> insert(const V& v) {
    const u128 id = key(v);
    KASSA_ASSERT(id != 0);
    if ((size_ + 1) * 10 > capacity_ * 7) rehash(capacity_ * 2);
    for (size_t i = id_hash(id) & mask_;; i = (i + 1) & mask_) {
      const u128 k = key(slots_[i]);
      if (k == id) return {&slots_[i], false};
      if (k == 0) {
        slots_[i] = v;
        ++size_;
        return {&slots_[i], true};
      }
    }
  }

  // Inserts or overwrites.
  V& upsert(const V& v) {
    auto [slot, inserted] = insert(v);
    if (!inserted) *slot = v;
    return *slot;
  }

  bool erase(u128 id) {
    for (size_t i = id_hash(id) & mask_;; i = (i + 1) & mask_) {
      const u128 k = key(slots_[i]);
      if (k == 0) return false;
      if (k == id) {
        erase_slot(i);
        return true;
      }
    }
  }

  template <class F> void for_each(F&& f) const {
    for (size_t i = 0; i < capacity_; ++i) {
      if (key(slots_[i]) != 0) f(slots_[i]);
    }
  }

  // Erases entries for which `pred` holds until at most `count_max` remain, resuming where
  // the previous call stopped so that repeated calls do not rescan emptied slots.
  template <class Pred> void erase_while_over(size_t count_max, Pred&& pred) {
    for (size_t scanned = 0; scanned < capacity_ && size_ > count_max; ++scanned) {
      cursor_ &= mask_;
      if (key(slots_[cursor_]) != 0 && pred(slots_[cursor_])) {
        erase_slot(cursor_); // may shift another entry into this slot: look at it again
      } else {
        ++cursor_;
      }
    }
  }

private:
  static u128 key(const V& v) { return KeyOf{}(v); }

  void erase_slot(size_t hole) {
    // Backward shift: pull later entries of the probe run into the hole when that keeps
    // them reachable from their home slot.
    for (size_t j = (hole + 1) & mask_;; j = (j + 1) & mask_) {
      const u128 k = key(slots_[j]);
      if (k == 0) break;
      const size_t home = id_hash(k) & mask_;
      const size_t dist_hole = (j - hole) & mask_;
      const size_t dist_home = (j - home) & mask_;
      if (dist_home >= dist_hole) {
        slots_[hole] = slots_[j];
        hole = j;
      }
    }
    std::memset(static_cast<void*>(&slots_[hole]), 0, sizeof(V));
    --size_;
  }

  static V* allocate(size_t capacity) { return static_cast<V*>(table_allocate(capacity * sizeof(V))); }

  void rehash(size_t capacity) {
    std::unique_ptr<V[], table_free> old(slots_.release());
    const size_t old_capacity = capacity_;
    slots_.reset(allocate(capacity));
    capacity_ = capacity;
    mask_ = capacity - 1;
    size_ = 0;
    for (size_t i = 0; i < old_capacity; ++i) {
      if (key(old[i]) != 0) insert(old[i]);
    }
  }

  std::unique_ptr<V[], table_free> slots_;
  size_t capacity_ = 0;
  size_t mask_ = 0;
  size_t size_ = 0;
  size_t cursor_ = 0; // where erase_while_over resumes
};

} // namespace kassa::ledger

namespace kassa::ledger {

// The set of every transfer id the ledger has ever stored, kept as 64-bit fingerprints (8 bytes
// an id). It answers "certainly new" without touching disk; a fingerprint hit means "maybe
// stored", and the caller looks the id up in the store. Ids are never removed: a rolled-back
// chain leaves a fingerprint that costs one needless lookup, never a wrong answer.
class fingerprint_set {
public:
  fingerprint_set() { rehash(1024); }

  static uint64_t fingerprint(u128 id) {
    const uint64_t h = id_hash(id) ^ (u128_hi(id) * 0xD6E8FEB86659FD93ull);
    return h == 0 ? 1 : h;
  }

  bool maybe_contains(u128 id) const {
    const uint64_t f = fingerprint(id);
    for (size_t i = f & mask_;; i = (i + 1) & mask_) {
      if (slots_[i] == f) return true;
      if (slots_[i] == 0) return false;
    }
  }

  void insert(u128 id) {
    if ((size_ + 1) * 10 > capacity_ * 7) rehash(capacity_ * 2);
    insert_fingerprint(fingerprint(id));
  }

  void prefetch(u128 id) const { __builtin_prefetch(&slots_[fingerprint(id) & mask_]); }
  size_t size() const { return size_; }
  size_t bytes() const { return capacity_ * sizeof(uint64_t); }

private:
  void insert_fingerprint(uint64_t f) {
    for (size_t i = f & mask_;; i = (i + 1) & mask_) {
      if (slots_[i] == f) return;
      if (slots_[i] == 0) {
        slots_[i] = f;
        ++size_;
        return;
      }
    }
  }

  void rehash(size_t capacity) {
    std::unique_ptr<uint64_t[], table_free> old(slots_.release());
    const size_t old_capacity = capacity_;
    slots_.reset(static_cast<uint64_t*>(table_allocate(capacity * sizeof(uint64_t))));
    capacity_ = capacity;
    mask_ = capacity - 1;
    size_ = 0;
    for (size_t i = 0; i < old_capacity; ++i) {
      if (old[i] != 0) insert_fingerprint(old[i]);
    }
  }

  std::unique_ptr<uint64_t[], table_free> slots_;
  size_t capacity_ = 0;
  size_t mask_ = 0;
  size_t size_ = 0;
};

} // namespace kassa::ledger
