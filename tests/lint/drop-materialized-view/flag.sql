-- expect: drop-materialized-view
DROP MATERIALIZED VIEW plan_counts;
