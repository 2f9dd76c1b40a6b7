-- expect: rename-view
ALTER VIEW billing_plans RENAME TO plans;
-- expect: rename-view
ALTER MATERIALIZED VIEW plan_counts RENAME TO plan_totals;
