-- keel:no-transaction
-- each statement commits alone: the CREATE comes too late
-- expect: drop-view
DROP VIEW billing_plans;
CREATE VIEW billing_plans AS SELECT 1 AS x;
BEGIN;
DROP VIEW other_view;
CREATE VIEW other_view AS SELECT 2 AS y;
COMMIT;
