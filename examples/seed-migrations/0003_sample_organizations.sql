-- 0003_sample_organizations: the two organizations seed 003's test scripts
-- use (step 4), in the pre-migration state, so the multi-credit allocation of
-- 0031 has something to allocate. Idempotent (ON CONFLICT DO NOTHING).

INSERT INTO organizations (id, name, plan_name, total_credits, status) VALUES
    ('00000000-0000-0000-0000-000000000001', 'Enterprise Test Org', 'enterprise', 0, 'active'),
    ('00000000-0000-0000-0000-000000000002', 'Custom Test Org', 'custom', 2000, 'active')
ON CONFLICT (id) DO NOTHING;
