// The port allocator's table in the SQLite store (migration 9).
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <mutex>
#include <set>
#include <thread>

#include "store/sqlite_store.h"
#include "support/fake_clock.h"
#include "support/test_dir.h"

namespace slipway {
namespace {

class SqlitePortsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = FreshTestDir("slipway-ports");
    store_ = OpenStore();
  }
  void TearDown() override {
    store_.reset();
    std::filesystem::remove_all(dir_);
  }
  std::unique_ptr<Store> OpenStore() {
    auto s = OpenSqliteStore((dir_ / "db").string(), clock_);
    EXPECT_TRUE(s.ok()) << s.status().ToString();
    return s.ok() ? std::move(*s) : nullptr;
  }
  int Reserve(const std::string& owner, int lo, int hi, const std::vector<int>& skip = {}) {
    auto port = store_->ReservePort("service", owner, lo, hi, skip);
    EXPECT_TRUE(port.ok()) << port.status().ToString();
    return port.ok() ? *port : -1;
  }

  std::filesystem::path dir_;
  testing::FakeClock clock_;
  std::unique_ptr<Store> store_;
};

TEST_F(SqlitePortsTest, ReservesTheLowestFreePortNotSkipped) {
  EXPECT_EQ(Reserve("sandbox/a", 9001, 9010, {9001, 9002}), 9003);
  EXPECT_EQ(Reserve("sandbox/a", 9001, 9010), 9001);
  EXPECT_EQ(Reserve("sandbox/b", 9001, 9010, {9002}), 9004);
  EXPECT_EQ(Reserve("sandbox/b", 9001, 9010), 9002);
  auto gw = store_->ReservePort("gateway", "sandbox/b", 8081, 8081, {});
  ASSERT_TRUE(gw.ok());
  EXPECT_EQ(*gw, 8081);

  auto list = store_->ListPorts();
  ASSERT_TRUE(list.ok()) << list.status().ToString();
  ASSERT_EQ(list->size(), 5u);
  const PortReservation& first = (*list)[0];
  EXPECT_EQ(first.port, 8081) << "by port";
  EXPECT_EQ(first.kind, "gateway");
  EXPECT_EQ(first.owner, "sandbox/b");
  EXPECT_EQ(first.created_ms, clock_.WallMillis());
  EXPECT_EQ((*list)[1].port, 9001);
  EXPECT_EQ((*list)[1].kind, "service");
  EXPECT_EQ((*list)[1].owner, "sandbox/a");
  EXPECT_EQ((*list)[4].port, 9004);
}

TEST_F(SqlitePortsTest, ExhaustedRangeIsUnavailableAndBadRangesInvalid) {
  EXPECT_EQ(Reserve("sandbox/a", 9001, 9002), 9001);
  EXPECT_EQ(Reserve("sandbox/a", 9001, 9002), 9002);
  EXPECT_EQ(store_->ReservePort("service", "sandbox/b", 9001, 9002, {}).status().code(),
            Code::kUnavailable);
  EXPECT_EQ(store_->ReservePort("service", "sandbox/b", 9003, 9004, {9003, 9004}).status().code(),
            Code::kUnavailable)
      << "skipped ports are not free";
  EXPECT_EQ(store_->ListPorts()->size(), 2u) << "a failed reservation records nothing";
  for (auto [lo, hi] :
       {std::pair{10, 9}, std::pair{0, 10}, std::pair{65535, 65536}, std::pair{-5, -1}}) {
    EXPECT_EQ(store_->ReservePort("service", "x", lo, hi, {}).status().code(), Code::kInvalid)
        << lo << ".." << hi;
  }
  EXPECT_EQ(Reserve("sandbox/b", 65535, 65535), 65535);
}

TEST_F(SqlitePortsTest, ReleasedPortsAreReused) {
  EXPECT_EQ(Reserve("sandbox/a", 9001, 9010), 9001);
  EXPECT_EQ(Reserve("sandbox/b", 9001, 9010), 9002);
  EXPECT_EQ(Reserve("sandbox/a", 9001, 9010), 9003);
  ASSERT_TRUE(store_->ReleasePorts("sandbox/a").ok());
  auto left = store_->ListPorts();
  ASSERT_EQ(left->size(), 1u);
  EXPECT_EQ(left->front().owner, "sandbox/b");
  EXPECT_EQ(Reserve("sandbox/c", 9001, 9010), 9001);
  EXPECT_EQ(Reserve("sandbox/c", 9001, 9010), 9003);

  ASSERT_TRUE(store_->ReleasePort(9002).ok());
  EXPECT_EQ(Reserve("sandbox/d", 9001, 9010), 9002);
  EXPECT_TRUE(store_->ReleasePort(9999).ok()) << "nothing reserved: fine";
  EXPECT_TRUE(store_->ReleasePorts("sandbox/nobody").ok());
  EXPECT_EQ(store_->ListPorts()->size(), 3u);
}

// Each of `threads` threads reserves `each` ports of [lo, hi] from `store`, recording them.
void ReserveConcurrently(const std::vector<Store*>& stores, int threads, int each, int lo, int hi,
                         std::vector<int>& got) {
  std::mutex mu;
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t) {
    Store* store = stores[static_cast<std::size_t>(t) % stores.size()];
    pool.emplace_back([&, store, t] {
      for (int i = 0; i < each; ++i) {
        auto port = store->ReservePort("service", "t" + std::to_string(t), lo, hi, {});
        ASSERT_TRUE(port.ok()) << port.status().ToString();
        std::lock_guard lock(mu);
        got.push_back(*port);
      }
    });
  }
  for (auto& th : pool) th.join();
}

TEST_F(SqlitePortsTest, ConcurrentThreadsGetDistinctPorts) {
  std::vector<int> got;
  ReserveConcurrently({store_.get()}, 20, 1, 20000, 20019, got);
  std::set<int> distinct(got.begin(), got.end());
  ASSERT_EQ(got.size(), 20u);
  EXPECT_EQ(distinct.size(), 20u) << "no port handed out twice";
  EXPECT_EQ(*distinct.begin(), 20000);
  EXPECT_EQ(*distinct.rbegin(), 20019);
  EXPECT_EQ(store_->ListPorts()->size(), 20u);
  EXPECT_EQ(store_->ReservePort("service", "late", 20000, 20019, {}).status().code(),
            Code::kUnavailable);
}

// Two stores on one file (as two server processes would be) share no mutex: SQLite's write
// lock must keep the ports distinct.
TEST_F(SqlitePortsTest, TwoStoresOnOneFileGetDistinctPorts) {
  auto other = OpenStore();
  ASSERT_NE(other, nullptr);
  std::vector<int> got;
  ReserveConcurrently({store_.get(), other.get()}, 4, 10, 30000, 30039, got);
  std::set<int> distinct(got.begin(), got.end());
  ASSERT_EQ(got.size(), 40u);
  EXPECT_EQ(distinct.size(), 40u) << "no port handed out twice";
  EXPECT_EQ(*distinct.rbegin(), 30039);
  EXPECT_EQ(other->ListPorts()->size(), 40u);
  EXPECT_EQ(other->ReservePort("service", "late", 30000, 30039, {}).status().code(),
            Code::kUnavailable);
}

}  // namespace
}  // namespace slipway
