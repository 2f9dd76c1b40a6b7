-- 0101_downgrade_billing_models: seed 000's superseded 0004_billing_models.py
-- downgrade(), "DESTRUCTIVE - DO NOT USE". The guard refuses it (KL001):
-- the table and both enum types, with every column that uses them, would go.

DROP TABLE organization_billing;
DROP TYPE billing_status CASCADE;
DROP TYPE plan_tier CASCADE;
