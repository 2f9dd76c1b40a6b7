/*
 * tests/integration/credits_escrow_test.cpp
 *   The escrow slots of a hot account (sql/keel--0.2.0.sql, keel.credit_escrow;
 *   extension/credits/consume_direct.cpp) with real sessions: a consumption
 *   that waited for the balance row lends its backend's slot an allowance,
 *   and that backend's next consumptions take from the slot without the
 *   balance row's lock; a drain of a hot account consumes every credit and
 *   not one more; folds (grants, holds, refunds) running among hot
 *   consumers raise no error and leave verify_credits() empty; what a
 *   consumption returns as remaining counts the slots. Rule: issue
 *   13, "hot throughput at least 0.8x spread ... zero overdraft stays and
 *   get_available_credits stays exact". Own scratch database keel_it_escrow.
 */
#include "test_db.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace {

using keel_test::Conn;
using keel_test::Connect;
using keel_test::Exec;
using keel_test::ScalarText;

constexpr const char *kDb = "keel_it_escrow";

/* RunSql returns "" on success, else the SQLSTATE and message. */
std::string RunSql(PGconn *conn, const std::string &sql) {
    return keel_test::Failure(keel_test::Try(conn, sql));
}

class CreditsEscrow : public ::testing::Test {
  protected:
    static void SetUpTestSuite() {
        keel_test::ScratchDatabase(kDb, true);
        Conn conn = Connect(kDb);
        Exec(conn.get(), "INSERT INTO keel.credit_plans (plan, credit_type, fixed_amount) VALUES "
                         "('it_big', 'email', 1000000), ('it_5000', 'email', 5000)");
    }
    static void Allocate(const std::string &account, const std::string &plan) {
        Conn conn = Connect(kDb);
        Exec(conn.get(),
             "SELECT * FROM keel.allocate_plan_credits('" + account + "', '" + plan + "')");
    }
};

/*
 * Session B waits for the balance row that A holds, then lends its slot;
 * while A holds the row again, B consumes from its slot without waiting
 * (lock_timeout 100 ms would fail it otherwise), writes a ledger row naming
 * the slot, and get_available_credits counts every credit exactly.
 */
TEST_F(CreditsEscrow, AWaitedConsumptionLendsItsSlotAndTheNextTakesNoLock) {
    const std::string acc = "00000000-0000-0000-0000-0000000e5c01";
    Allocate(acc, "it_big");
    Conn a = Connect(kDb), b = Connect(kDb);
    const std::string consume = "SELECT keel.consume_credits('" + acc + "', 'email', 1)";
    ASSERT_EQ(RunSql(a.get(), "BEGIN"), "");
    ASSERT_EQ(RunSql(a.get(), consume), "");
    std::string waited;
    std::thread t([&] { waited = RunSql(b.get(), consume); });
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    ASSERT_EQ(RunSql(a.get(), "COMMIT"), "");
    t.join();
    ASSERT_EQ(waited, "");
    /* one slot lent to, B's; 128 = 128 consumptions of this amount */
    EXPECT_EQ(ScalarText(a.get(),
                         "SELECT count(*) FROM keel.credit_escrow WHERE account = '" + acc + "'"),
              "1");
    std::string slot =
        ScalarText(a.get(), "SELECT slot FROM keel.credit_escrow WHERE account = '" + acc + "'");
    EXPECT_EQ(ScalarText(a.get(), "SELECT allowance || '/' || used FROM keel.credit_escrow WHERE "
                                  "account = '" +
                                      acc + "' AND slot = " + slot),
              "128/0");
    EXPECT_EQ(
        ScalarText(a.get(), "SELECT lent FROM keel.credit_balances WHERE account = '" + acc + "'"),
        "128");

    ASSERT_EQ(RunSql(a.get(), "BEGIN"), "");
    ASSERT_EQ(RunSql(a.get(), consume), "");
    ASSERT_EQ(RunSql(b.get(), "SET lock_timeout = '100ms'"), "");
    EXPECT_EQ(ScalarText(b.get(), "SELECT keel.consume_credits('" + acc + "', 'email', 5)"),
              /* 1,000,000 - 2 committed - 5; A's uncommitted credit is not seen */
              "999993");
    ASSERT_EQ(RunSql(a.get(), "COMMIT"), "");
    EXPECT_EQ(ScalarText(a.get(), "SELECT escrow_slot || '/' || used_after FROM "
                                  "keel.credit_ledger WHERE account = '" +
                                      acc + "' AND kind = 'consumption' ORDER BY id DESC LIMIT 1"),
              slot + "/5");
    EXPECT_EQ(ScalarText(a.get(), "SELECT keel.get_available_credits('" + acc + "', 'email')"),
              "999992");
    /* A has no slot: it consumes through the balance row, and what it is told
     * remains counts B's unused allowance, as get_available_credits does */
    EXPECT_EQ(ScalarText(a.get(), consume), "999991");
    EXPECT_EQ(ScalarText(a.get(), "SELECT keel.get_available_credits('" + acc + "', 'email')"),
              "999991");
    EXPECT_EQ(ScalarText(a.get(), "SELECT count(*) FROM keel.verify_credits()"), "0");
}

/*
 * 16 sessions drain a hot account of 5,000 credits one at a time, lending
 * and folding slots as they go: exactly 5,000 succeed, each session ends on
 * KL002 and nothing else, and the balance, the slots and the ledger agree.
 */
TEST_F(CreditsEscrow, SixteenSessionsDrainAHotAccountExactly) {
    const std::string acc = "00000000-0000-0000-0000-0000000e5c02";
    Allocate(acc, "it_5000");
    constexpr int kSessions = 16;
    std::atomic<int> consumed{0}, refused{0};
    std::mutex mu;
    std::vector<std::string> failures;
    std::vector<std::thread> threads;
    for (int t = 0; t < kSessions; ++t)
        threads.emplace_back([&] {
            Conn conn = Connect(kDb);
            for (;;) {
                std::string err =
                    RunSql(conn.get(), "SELECT keel.consume_credits('" + acc + "', 'email', 1)");
                if (err.empty()) {
                    ++consumed;
                } else if (err.rfind("KL002", 0) == 0) {
                    ++refused;
                    return;
                } else {
                    std::lock_guard<std::mutex> lock(mu);
                    failures.push_back(err);
                    return;
                }
            }
        });
    for (auto &th : threads)
        th.join();
    EXPECT_TRUE(failures.empty()) << failures.size() << " failure(s), first: "
                                  << (failures.empty() ? "" : failures[0]);
    EXPECT_EQ(consumed.load(), 5000);
    EXPECT_EQ(refused.load(), kSessions);
    Conn conn = Connect(kDb);
    EXPECT_EQ(ScalarText(conn.get(), "SELECT keel.get_available_credits('" + acc + "', 'email')"),
              "0");
    EXPECT_EQ(ScalarText(conn.get(), "SELECT count(*) FROM keel.credit_ledger WHERE account = '" +
                                         acc + "' AND kind = 'consumption'"),
              "5000");
    EXPECT_NE(ScalarText(conn.get(), "SELECT count(*) FROM keel.credit_ledger WHERE account = '" +
                                         acc +
                                         "' AND kind = 'consumption' AND escrow_slot IS NOT "
                                         "NULL"),
              "0")
        << "no consumption came from a slot: the drain did not exercise escrow";
    EXPECT_EQ(ScalarText(conn.get(), "SELECT count(*) FROM keel.verify_credits()"), "0");
}

/*
 * 10 hot consumers, with sessions that grant, hold and release, and refund
 * on the same account, each call its own transaction: the folds these force
 * interleave with slot consumptions, and no call fails (no deadlock, no
 * spurious KL002); afterwards verify_credits() is empty and available is
 * exactly allocated + grants - consumed + refunded.
 */
TEST_F(CreditsEscrow, FoldsAmongHotConsumersRaiseNothing) {
    const std::string acc = "00000000-0000-0000-0000-0000000e5c03";
    Allocate(acc, "it_big");
    constexpr int kConsumers = 10, kCalls = 600, kOthers = 60;
    std::mutex mu;
    std::vector<std::string> failures;
    auto fail = [&](const std::string &what, const std::string &err) {
        std::lock_guard<std::mutex> lock(mu);
        failures.push_back(what + ": " + err);
    };
    std::vector<std::thread> threads;
    for (int t = 0; t < kConsumers; ++t)
        threads.emplace_back([&] {
            Conn conn = Connect(kDb);
            for (int i = 0; i < kCalls; ++i) {
                std::string err =
                    RunSql(conn.get(), "SELECT keel.consume_credits('" + acc + "', 'email', 2)");
                if (!err.empty())
                    return fail("consume", err);
            }
        });
    threads.emplace_back([&] {
        Conn conn = Connect(kDb);
        for (int i = 0; i < kOthers; ++i) {
            std::string err =
                RunSql(conn.get(), "SELECT keel.grant_credits('" + acc + "', 'email', 3)");
            if (!err.empty())
                return fail("grant", err);
        }
    });
    threads.emplace_back([&] {
        Conn conn = Connect(kDb);
        for (int i = 0; i < kOthers; ++i) {
            std::string hold = ScalarText(conn.get(), "SELECT keel.hold_credits('" + acc +
                                                          "', 'email', 7, now() + interval '1 "
                                                          "hour')");
            std::string err = RunSql(conn.get(), "SELECT keel.release_hold('" + hold + "')");
            if (!err.empty())
                return fail("release", err);
        }
    });
    threads.emplace_back([&] {
        Conn conn = Connect(kDb);
        for (int i = 0; i < kOthers; ++i) {
            std::string err = RunSql(conn.get(), "SELECT keel.refund_credits((SELECT max(id) FROM "
                                                 "keel.credit_ledger WHERE account = '" +
                                                     acc + "' AND kind = 'consumption'), 1)");
            /* the newest consumption may already be refunded whole: KL006 is its answer */
            if (!err.empty() && err.rfind("KL006", 0) != 0 && err.rfind("22023", 0) != 0)
                return fail("refund", err);
        }
    });
    for (auto &th : threads)
        th.join();
    EXPECT_TRUE(failures.empty()) << failures.size() << " failure(s), first: "
                                  << (failures.empty() ? "" : failures[0]);
    Conn conn = Connect(kDb);
    std::string refunded = ScalarText(conn.get(), "SELECT coalesce(sum(amount), 0) FROM "
                                                  "keel.credit_ledger WHERE account = '" +
                                                      acc + "' AND kind = 'refund'");
    long expected = 1000000L + 3L * kOthers - 2L * kConsumers * kCalls + std::stol(refunded);
    EXPECT_EQ(ScalarText(conn.get(), "SELECT keel.get_available_credits('" + acc + "', 'email')"),
              std::to_string(expected));
    EXPECT_EQ(ScalarText(conn.get(), "SELECT count(*) FROM keel.verify_credits()"), "0");
}

} // namespace
