/*
 * tests/integration/credits_concurrency_test.cpp
 *   keel.consume_credits() under real concurrency: many sessions, one
 *   connection each, against one account. The seed's check-then-update
 *   (seed 003, step 2.2 consume_specific_credits) overdraws here once its
 *   CHECK constraints are gone; keel's single conditional UPDATE must not.
 *   Runs in its own scratch database keel_it_credits (PG* environment of the
 *   throwaway cluster; see test_db.hpp).
 */
#include "test_db.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <condition_variable>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace {

using keel_test::Conn;
using keel_test::Connect;
using keel_test::Exec;
using keel_test::ScalarText;

constexpr const char *kDb = "keel_it_credits";
constexpr int kSessions = 16;

/* StartGate lets every thread connect first, then releases them at once. */
class StartGate {
  public:
    explicit StartGate(int parties) : waiting_(parties) {}
    void ArriveAndWait() {
        std::unique_lock<std::mutex> lock(mu_);
        if (--waiting_ == 0)
            cv_.notify_all();
        else
            cv_.wait(lock, [this] { return waiting_ == 0; });
    }

  private:
    std::mutex mu_;
    std::condition_variable cv_;
    int waiting_;
};

using keel_test::Outcome;

/* Call runs one statement with text params; Outcome.value is its first column. */
Outcome Call(PGconn *conn, const std::string &sql, const std::vector<std::string> &params) {
    return keel_test::Try(conn, sql, params);
}

class CreditsConcurrency : public ::testing::Test {
  protected:
    static void SetUpTestSuite() {
        keel_test::ScratchDatabase(kDb, true);
        Conn conn = Connect(kDb);
        /* A plan giving exactly 200 ai credits and 1000 email credits. */
        Exec(conn.get(), "INSERT INTO keel.credit_plans (plan, credit_type, fixed_amount) VALUES "
                         "('it_drain', 'ai', 200), ('it_drain', 'email', 1000)");
    }

    static void Allocate(const std::string &account) {
        Conn conn = Connect(kDb);
        Exec(conn.get(), "SELECT * FROM keel.allocate_plan_credits('" + account + "', 'it_drain')");
    }
};

/*
 * 16 sessions drain 200 credits one at a time: exactly 200 succeed, every
 * refusal is KL002, the ledger has exactly 200 consumption rows, and
 * verify_credits() finds nothing wrong.
 */
TEST_F(CreditsConcurrency, SixteenSessionsNeverOverdraw) {
    const std::string account = "00000000-0000-0000-0000-00000000c001";
    Allocate(account);

    StartGate gate(kSessions);
    std::atomic<int> consumed{0};
    std::atomic<int> refused{0};
    std::mutex failures_mu;
    std::vector<std::string> failures;

    std::vector<std::thread> threads;
    for (int t = 0; t < kSessions; ++t) {
        threads.emplace_back([&, t] {
            Conn conn = Connect(kDb);
            gate.ArriveAndWait();
            for (;;) {
                Outcome out = Call(conn.get(), "SELECT keel.consume_credits($1::uuid, 'ai', 1, $2)",
                                   {account, "thread " + std::to_string(t)});
                if (out.ok) {
                    ++consumed;
                    continue;
                }
                if (out.sqlstate == "KL002") {
                    ++refused;
                    break; /* one credit at a time: KL002 means none is left */
                }
                std::lock_guard<std::mutex> lock(failures_mu);
                failures.push_back(out.sqlstate + ": " + out.message);
                break;
            }
        });
    }
    for (auto &th : threads)
        th.join();

    EXPECT_TRUE(failures.empty()) << "unexpected error: " << (failures.empty() ? "" : failures[0]);
    EXPECT_EQ(consumed.load(), 200);
    EXPECT_EQ(refused.load(), kSessions);

    Conn conn = Connect(kDb);
    EXPECT_EQ(ScalarText(conn.get(), "SELECT used FROM keel.credit_balances WHERE account = '" +
                                         account + "' AND credit_type = 'ai'"),
              "200");
    EXPECT_EQ(ScalarText(conn.get(), "SELECT keel.get_available_credits('" + account + "', 'ai')"),
              "0");
    EXPECT_EQ(ScalarText(conn.get(), "SELECT count(*) FROM keel.credit_ledger WHERE account = '" +
                                         account + "' AND kind = 'consumption'"),
              "200");
    EXPECT_EQ(ScalarText(conn.get(), "SELECT count(*) FROM keel.verify_credits()"), "0");
}

/*
 * One hot account, 16 sessions, 3,000 consumptions each, never short of
 * credits: every call succeeds (a fast path that lost the row under
 * concurrent updates would answer KL002 here), and used, the ledger and
 * verify_credits() agree to the credit. Enough updates of one row that many
 * are not HOT (the page fills), which is what a dirty-snapshot lookup got
 * wrong.
 */
TEST_F(CreditsConcurrency, HotAccountSixteenSessionsEveryCallCounts) {
    const std::string account = "00000000-0000-0000-0000-00000000c0f7";
    {
        Conn conn = Connect(kDb);
        Exec(conn.get(), "INSERT INTO keel.credit_plans (plan, credit_type, fixed_amount) VALUES "
                         "('it_hot', 'email', 1000000000)");
        Exec(conn.get(), "SELECT * FROM keel.allocate_plan_credits('" + account + "', 'it_hot')");
    }
    constexpr int kCalls = 3000;
    StartGate gate(kSessions);
    std::atomic<int> consumed{0};
    std::mutex failures_mu;
    std::vector<std::string> failures;
    std::vector<std::thread> threads;
    for (int t = 0; t < kSessions; ++t) {
        threads.emplace_back([&] {
            Conn conn = Connect(kDb);
            gate.ArriveAndWait();
            for (int i = 0; i < kCalls; ++i) {
                Outcome out = Call(conn.get(), "SELECT keel.consume_credits($1::uuid, 'email', 1)",
                                   {account});
                if (out.ok) {
                    ++consumed;
                    continue;
                }
                std::lock_guard<std::mutex> lock(failures_mu);
                failures.push_back(out.sqlstate + ": " + out.message);
                break;
            }
        });
    }
    for (auto &th : threads)
        th.join();
    EXPECT_TRUE(failures.empty()) << failures.size() << " session(s) failed, first: "
                                  << (failures.empty() ? "" : failures[0]);
    EXPECT_EQ(consumed.load(), kSessions * kCalls);
    Conn conn = Connect(kDb);
    /* used counts what the balance lent to escrow slots: available is the exact figure */
    EXPECT_EQ(ScalarText(conn.get(), "SELECT 1000000000 - keel.get_available_credits('" + account +
                                         "', 'email')"),
              std::to_string(kSessions * kCalls));
    EXPECT_EQ(ScalarText(conn.get(), "SELECT count(*) FROM keel.credit_ledger WHERE account = '" +
                                         account + "' AND kind = 'consumption'"),
              std::to_string(kSessions * kCalls));
    EXPECT_EQ(ScalarText(conn.get(), "SELECT count(*) FROM keel.verify_credits()"), "0");
}

/*
 * Two sessions run overlapping batches (500 items over the same 50
 * accounts, each batch in its own shuffled order) while 8 sessions consume
 * single credits from the same accounts: no deadlock, no error, and every
 * item and call is in the ledger.
 */
TEST_F(CreditsConcurrency, OverlappingBatchesAndSingleCallsAgree) {
    {
        Conn conn = Connect(kDb);
        Exec(conn.get(), "INSERT INTO keel.credit_plans (plan, credit_type, fixed_amount) VALUES "
                         "('it_batch', 'email', 1000000000)");
        Exec(conn.get(), "SELECT count(*) FROM generate_series(1, 50) g, LATERAL "
                         "keel.allocate_plan_credits(md5('it_batch' || g)::uuid, 'it_batch')");
    }
    constexpr int kBatches = 20, kSingles = 8, kSingleCalls = 500;
    std::mutex failures_mu;
    std::vector<std::string> failures;
    std::vector<std::thread> threads;
    StartGate gate(2 + kSingles);
    for (int t = 0; t < 2; ++t)
        threads.emplace_back([&, t] {
            Conn conn = Connect(kDb);
            gate.ArriveAndWait();
            for (int b = 0; b < kBatches; ++b) {
                Outcome out = Call(
                    conn.get(),
                    "SELECT count(*) FILTER (WHERE error_code IS NULL)::text FROM "
                    "keel.consume_credits_batch(ARRAY(SELECT md5('it_batch' || (1 + (g * $1::int) "
                    "% 50))::uuid FROM generate_series(1, 500) g), array_fill('email'::text, "
                    "ARRAY[500]), array_fill(1::bigint, ARRAY[500]))",
                    {std::to_string(7 + 6 * t + b)});
                if (!out.ok || out.value != "500") {
                    std::lock_guard<std::mutex> lock(failures_mu);
                    failures.push_back("batch: " + out.sqlstate + " " + out.value + " " +
                                       out.message);
                    return;
                }
            }
        });
    for (int t = 0; t < kSingles; ++t)
        threads.emplace_back([&, t] {
            Conn conn = Connect(kDb);
            gate.ArriveAndWait();
            for (int i = 0; i < kSingleCalls; ++i) {
                Outcome out = Call(conn.get(),
                                   "SELECT keel.consume_credits(md5('it_batch' || $1)::uuid, "
                                   "'email', 1)",
                                   {std::to_string(1 + (t * 7 + i) % 50)});
                if (!out.ok) {
                    std::lock_guard<std::mutex> lock(failures_mu);
                    failures.push_back("single: " + out.sqlstate + " " + out.message);
                    return;
                }
            }
        });
    for (auto &th : threads)
        th.join();
    EXPECT_TRUE(failures.empty()) << failures.size() << " failure(s), first: "
                                  << (failures.empty() ? "" : failures[0]);
    Conn conn = Connect(kDb);
    long expected = 2L * kBatches * 500 + long(kSingles) * kSingleCalls;
    EXPECT_EQ(ScalarText(conn.get(), "SELECT sum(1000000000 - keel.get_available_credits("
                                     "md5('it_batch' || g)::uuid, 'email')) FROM "
                                     "generate_series(1, 50) g"),
              std::to_string(expected));
    EXPECT_EQ(ScalarText(conn.get(), "SELECT count(*) FROM keel.credit_ledger l JOIN "
                                     "generate_series(1, 50) g ON l.account = md5('it_batch' || "
                                     "g)::uuid WHERE kind = 'consumption'"),
              std::to_string(expected));
    EXPECT_EQ(ScalarText(conn.get(), "SELECT count(*) FROM keel.verify_credits()"), "0");
}

/*
 * The same idempotency key sent by 16 sessions at once is charged once, and
 * every session gets the same result; repeated over several keys.
 */
TEST_F(CreditsConcurrency, SameIdempotencyKeyChargedOnce) {
    const std::string account = "00000000-0000-0000-0000-00000000c002";
    Allocate(account);
    constexpr int kRounds = 10;

    for (int round = 0; round < kRounds; ++round) {
        const std::string key = "it-key-" + std::to_string(round);
        StartGate gate(kSessions);
        std::mutex mu;
        std::map<std::string, int> results; /* returned value -> sessions */
        std::vector<std::string> failures;

        std::vector<std::thread> threads;
        for (int t = 0; t < kSessions; ++t) {
            threads.emplace_back([&] {
                Conn conn = Connect(kDb);
                gate.ArriveAndWait();
                Outcome out = Call(conn.get(),
                                   "SELECT keel.consume_credits($1::uuid, 'email', 7, 'order', $2)",
                                   {account, key});
                std::lock_guard<std::mutex> lock(mu);
                if (out.ok)
                    ++results[out.value];
                else
                    failures.push_back(out.sqlstate + ": " + out.message);
            });
        }
        for (auto &th : threads)
            th.join();

        EXPECT_TRUE(failures.empty()) << key << ": " << (failures.empty() ? "" : failures[0]);
        ASSERT_EQ(results.size(), 1u) << key << ": sessions saw different results";
        EXPECT_EQ(results.begin()->first, std::to_string(1000 - 7 * (round + 1))) << key;
        EXPECT_EQ(results.begin()->second, kSessions) << key;
    }

    Conn conn = Connect(kDb);
    EXPECT_EQ(ScalarText(conn.get(), "SELECT count(*) FROM keel.credit_ledger WHERE account = '" +
                                         account + "' AND kind = 'consumption'"),
              std::to_string(kRounds));
    EXPECT_EQ(
        ScalarText(conn.get(), "SELECT keel.get_available_credits('" + account + "', 'email')"),
        std::to_string(1000 - 7 * kRounds));
    EXPECT_EQ(ScalarText(conn.get(), "SELECT count(*) FROM keel.verify_credits()"), "0");

    /* The key reused with another amount, from any session, is KL003. */
    Outcome clash =
        Call(conn.get(), "SELECT keel.consume_credits($1::uuid, 'email', 8, 'order', $2)",
             {account, "it-key-0"});
    EXPECT_FALSE(clash.ok);
    EXPECT_EQ(clash.sqlstate, "KL003");
}

} // namespace
