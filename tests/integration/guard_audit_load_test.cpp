/*
 * tests/integration/guard_audit_load_test.cpp
 *   The audit row of a blocked statement survives under load (issue 5: 14
 *   sessions with 20 refusals each once left 132 of 280 rows only in the
 *   server log, "no background worker slot is free"). Every refusal must end
 *   up in keel.guard_audit: written by the worker at once, or spooled and
 *   moved in by keel.guard_audit_flush(). Also with a parallel query holding
 *   worker slots. Runs in its own scratch database keel_it_guard_audit.
 */
#include "test_db.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <iostream>
#include <string>
#include <thread>
#include <vector>

namespace {

using keel_test::Conn;
using keel_test::Connect;
using keel_test::Exec;
using keel_test::Result;
using keel_test::ScalarText;

constexpr const char *kDb = "keel_it_guard_audit";
constexpr int kSessions = 14;
constexpr int kRefusalsEach = 20;

/* Refuse sends n refusals on conn and returns how many failed with KL001. */
int Refuse(PGconn *conn, int n) {
    int refused = 0;
    for (int i = 0; i < n; i++)
        if (keel_test::Try(conn, "DROP TABLE precious").sqlstate == "KL001")
            refused++;
    return refused;
}

class GuardAuditLoad : public ::testing::Test {
  protected:
    void SetUp() override {
        keel_test::ScratchDatabase(kDb, true);
        Conn conn = Connect(kDb);
        Exec(conn.get(), "CREATE TABLE precious (id int)");
        Exec(conn.get(), "INSERT INTO precious SELECT generate_series(1, 10)");
    }
};

TEST_F(GuardAuditLoad, EveryRefusalOfManySessionsIsAudited) {
    std::atomic<int> refused{0};
    std::vector<std::thread> threads;
    for (int s = 0; s < kSessions; s++)
        threads.emplace_back([&refused] {
            Conn conn = Connect(kDb);
            refused += Refuse(conn.get(), kRefusalsEach);
        });
    for (auto &t : threads)
        t.join();
    ASSERT_EQ(refused.load(), kSessions * kRefusalsEach);

    Conn conn = Connect(kDb);
    std::string from_spool = ScalarText(conn.get(), "SELECT keel.guard_audit_flush()");
    std::string rows = ScalarText(conn.get(), "SELECT count(*) FROM keel.guard_audit "
                                              "WHERE action = 'blocked' AND rule = 'drop-table'");
    EXPECT_EQ(rows, std::to_string(kSessions * kRefusalsEach));
    std::cout << "[ keel     ] " << rows << " blocked rows, " << from_spool
              << " of them moved in from the spool by the flush\n";
    EXPECT_EQ(ScalarText(conn.get(), "SELECT count(*) FROM precious"), "10");
    /* nothing inserted twice */
    EXPECT_EQ(ScalarText(conn.get(), "SELECT count(*) - count(DISTINCT spool_id) FROM "
                                     "keel.guard_audit WHERE action = 'blocked'"),
              "0");
}

TEST_F(GuardAuditLoad, RefusalWhileParallelQueryHoldsWorkerSlots) {
    Conn busy = Connect(kDb);
    Exec(busy.get(), "CREATE TABLE big AS SELECT g AS id FROM generate_series(1, 2000000) g");
    Exec(busy.get(), "ANALYZE big");
    /* A parallel query that takes every worker slot it can while we refuse. */
    Exec(busy.get(), "SET max_parallel_workers_per_gather = 8");
    Exec(busy.get(), "SET parallel_setup_cost = 0");
    Exec(busy.get(), "SET parallel_tuple_cost = 0");
    ASSERT_EQ(PQsendQuery(busy.get(), "SELECT count(*) FROM big a, big b WHERE a.id = b.id"), 1);

    Conn conn = Connect(kDb);
    EXPECT_EQ(Refuse(conn.get(), 5), 5);
    Exec(conn.get(), "SELECT pg_cancel_backend(pid) FROM pg_stat_activity "
                     "WHERE query LIKE 'SELECT count(*) FROM big a%'");
    while (Result(PQgetResult(busy.get()), &PQclear))
        ;
    Exec(conn.get(), "SELECT keel.guard_audit_flush()");
    EXPECT_EQ(
        ScalarText(conn.get(), "SELECT count(*) FROM keel.guard_audit WHERE action = 'blocked'"),
        "5");
}

} // namespace
