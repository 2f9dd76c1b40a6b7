DROP VIEW billing_plans;
CREATE VIEW billing_plans AS SELECT 1 AS x;
