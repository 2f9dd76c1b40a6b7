-- a view of the same name is no replacement
-- expect: drop-materialized-view
DROP MATERIALIZED VIEW plan_counts;
CREATE VIEW plan_counts AS SELECT 1 AS n;
