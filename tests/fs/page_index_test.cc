#include <map>
#include <random>

#include <gtest/gtest.h>

#include <pagewire/fs/page_cache.h>

namespace pagewire::fs::detail {
namespace {

// page_cache's open-addressing index against std::map, through growth and backward-shift erase.
TEST(PageIndex, MatchesAReferenceMapOverRandomInsertAndErase) {
  page_index index(4);  // starts at 16 slots: grows several times
  std::map<std::tuple<dev_t, ino_t, std::uint64_t>, cache_entry*> ref;
  std::mt19937_64 rng(99);
  auto key_of = [](const auto& t) {
    return cache_key{std::get<0>(t), std::get<1>(t), std::get<2>(t)};
  };
  for (int step = 0; step < 20000; ++step) {
    auto t = std::make_tuple(static_cast<dev_t>(rng() % 2), static_cast<ino_t>(rng() % 3),
                             static_cast<std::uint64_t>(rng() % 700));
    cache_key k = key_of(t);
    auto* tag = reinterpret_cast<cache_entry*>(static_cast<std::uintptr_t>(step + 1) * 64);
    if (ref.count(t) == 0 && rng() % 3 != 0) {
      index.insert(k, tag);
      ref[t] = tag;
    } else if (ref.count(t) != 0) {
      index.erase(k);
      ref.erase(t);
    }
    ASSERT_EQ(index.size(), ref.size());
    if (step % 997 == 0) {
      for (const auto& [rt, e] : ref)
        ASSERT_EQ(index.find(key_of(rt)), e);
    }
    ASSERT_EQ(index.find(k), ref.count(t) ? ref[t] : nullptr);
  }
  for (const auto& [rt, e] : ref)
    ASSERT_EQ(index.find(key_of(rt)), e);
}

// page_cache sizes its index by budget_pages: a huge budget (SIZE_MAX for "no limit") must not
// be allocated (or overflow the sizing) before the first insert.
TEST(PageIndex, HugeExpectedSizeStartsSmallAndGrows) {
  for (std::size_t expected : {std::size_t{1} << 40, SIZE_MAX}) {
    page_index index(expected);
    for (std::uint64_t i = 0; i < 1000; ++i)
      index.insert(cache_key{1, 2, i}, reinterpret_cast<cache_entry*>((i + 1) * 64));
    ASSERT_EQ(index.size(), 1000u);
    for (std::uint64_t i = 0; i < 1000; ++i)
      ASSERT_EQ(index.find(cache_key{1, 2, i}), reinterpret_cast<cache_entry*>((i + 1) * 64));
  }
}

}  // namespace
}  // namespace pagewire::fs::detail
