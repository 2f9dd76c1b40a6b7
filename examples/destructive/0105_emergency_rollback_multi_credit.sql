-- 0105_emergency_rollback_multi_credit: seed 003 step 5.1 "Emergency
-- rollback - remove multi-credit columns (THIS IS DESTRUCTIVE - USE ONLY IN
-- EMERGENCY)", as written there, BEGIN/COMMIT wrapper included (keel runs the
-- body in its own transaction). Dropping the constraints and indexes goes
-- through; the DROP COLUMN of the eight credit columns is refused by the
-- guard (KL001), and the whole migration rolls back with it.
-- Fix: the seed drops its PL/pgSQL functions; keel never created them (keel's
-- native functions live in schema keel), so those DROP FUNCTION IF EXISTS
-- lines are no-ops kept for fidelity.

BEGIN;

-- Drop constraints first
ALTER TABLE organizations
DROP CONSTRAINT IF EXISTS check_ai_credits_limit,
DROP CONSTRAINT IF EXISTS check_whatsapp_credits_limit,
DROP CONSTRAINT IF EXISTS check_email_credits_limit,
DROP CONSTRAINT IF EXISTS check_sms_credits_limit;

-- Drop indexes
DROP INDEX IF EXISTS idx_organizations_ai_credits;
DROP INDEX IF EXISTS idx_organizations_whatsapp_credits;
DROP INDEX IF EXISTS idx_organizations_email_credits;
DROP INDEX IF EXISTS idx_organizations_sms_credits;
DROP INDEX IF EXISTS idx_organizations_multi_credit_summary;
DROP INDEX IF EXISTS idx_organizations_plan_credits;

-- Drop functions
DROP FUNCTION IF EXISTS allocate_plan_credits(UUID, TEXT);
DROP FUNCTION IF EXISTS get_available_credits(UUID, TEXT);
DROP FUNCTION IF EXISTS consume_specific_credits(UUID, TEXT, INTEGER, TEXT);

-- Remove columns (THIS IS DESTRUCTIVE - USE ONLY IN EMERGENCY)
ALTER TABLE organizations
DROP COLUMN IF EXISTS ai_credits,
DROP COLUMN IF EXISTS whatsapp_credits,
DROP COLUMN IF EXISTS email_credits,
DROP COLUMN IF EXISTS sms_credits,
DROP COLUMN IF EXISTS ai_used_credits,
DROP COLUMN IF EXISTS whatsapp_used_credits,
DROP COLUMN IF EXISTS email_used_credits,
DROP COLUMN IF EXISTS sms_used_credits;

COMMIT;
