-- 0030_multi_credit_columns: seed 003 step 2.1 (multi-credit columns beside
-- the unified total_credits) and step 2.3 (performance indexes). Additive only.
--
-- Not here: the seed's step 2.2 PL/pgSQL functions allocate_plan_credits,
-- get_available_credits and consume_specific_credits. keel ships them natively
-- (keel.allocate_plan_credits, keel.get_available_credits,
-- keel.consume_credits, keel.consume_specific_credits): atomic, never
-- overdrawn, with an append-only ledger. 0031 uses them.
--
-- Fixes against the seed:
--   * "\d organizations;" is a psql meta-command, not SQL: removed (use
--     \d organizations in psql, or keel status, to look afterwards).
--   * ADD CONSTRAINT check_..._limit fails when run twice (the constraint
--     exists): each is added by a DO block only when pg_constraint lacks it.

ALTER TABLE organizations
ADD COLUMN IF NOT EXISTS ai_credits INTEGER DEFAULT 0 CHECK (ai_credits >= 0),
ADD COLUMN IF NOT EXISTS whatsapp_credits INTEGER DEFAULT 0 CHECK (whatsapp_credits >= 0),
ADD COLUMN IF NOT EXISTS email_credits INTEGER DEFAULT 0 CHECK (email_credits >= 0),
ADD COLUMN IF NOT EXISTS sms_credits INTEGER DEFAULT 0 CHECK (sms_credits >= 0);

ALTER TABLE organizations
ADD COLUMN IF NOT EXISTS ai_used_credits INTEGER DEFAULT 0 CHECK (ai_used_credits >= 0),
ADD COLUMN IF NOT EXISTS whatsapp_used_credits INTEGER DEFAULT 0 CHECK (whatsapp_used_credits >= 0),
ADD COLUMN IF NOT EXISTS email_used_credits INTEGER DEFAULT 0 CHECK (email_used_credits >= 0),
ADD COLUMN IF NOT EXISTS sms_used_credits INTEGER DEFAULT 0 CHECK (sms_used_credits >= 0);

DO $$
DECLARE
    kind text;
BEGIN
    FOREACH kind IN ARRAY ARRAY['ai', 'whatsapp', 'email', 'sms'] LOOP
        IF NOT EXISTS (SELECT 1 FROM pg_constraint
                        WHERE conrelid = 'organizations'::regclass
                          AND conname = format('check_%s_credits_limit', kind)) THEN
            EXECUTE format('ALTER TABLE organizations ADD CONSTRAINT %I CHECK (%I <= %I)',
                           format('check_%s_credits_limit', kind),
                           kind || '_used_credits', kind || '_credits');
        END IF;
    END LOOP;
END
$$;

CREATE INDEX IF NOT EXISTS idx_organizations_ai_credits
ON organizations(id, ai_credits, ai_used_credits)
WHERE ai_credits > 0;

CREATE INDEX IF NOT EXISTS idx_organizations_whatsapp_credits
ON organizations(id, whatsapp_credits, whatsapp_used_credits)
WHERE whatsapp_credits > 0;

CREATE INDEX IF NOT EXISTS idx_organizations_email_credits
ON organizations(id, email_credits, email_used_credits)
WHERE email_credits > 0;

CREATE INDEX IF NOT EXISTS idx_organizations_sms_credits
ON organizations(id, sms_credits, sms_used_credits)
WHERE sms_credits > 0;

CREATE INDEX IF NOT EXISTS idx_organizations_multi_credit_summary
ON organizations(
    id,
    (ai_credits - ai_used_credits),
    (whatsapp_credits - whatsapp_used_credits),
    (email_credits - email_used_credits),
    (sms_credits - sms_used_credits)
) WHERE status = 'active';

CREATE INDEX IF NOT EXISTS idx_organizations_plan_credits
ON organizations(plan_name, ai_credits, whatsapp_credits, email_credits, sms_credits);
