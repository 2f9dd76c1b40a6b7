-- 0031_multi_credit_allocation: seed 003 step 3.1 (allocate every unmigrated
-- organization by plan) and step 3.2 (verify), with keel's native
-- keel.allocate_plan_credits(account uuid, plan text, total_credits bigint)
-- instead of the seed's PL/pgSQL loop.
--
-- keel.credit_balances (with its append-only ledger, which replaces the
-- seed's 'allocation' rows in credit_actions) is where credits are consumed
-- from: keel.consume_credits / keel.consume_specific_credits. The
-- organizations.*_credits columns of 0030 receive the allocation too, so
-- readers of the seed's schema (its verification queries) see the result.
--
-- Differences from the seed: one set-based statement instead of a row loop
-- with RAISE NOTICE progress and pg_sleep (a migration runs in one
-- transaction, so pausing inside it only holds locks longer); plan 'custom'
-- for a NULL plan_name as in the seed. The role running this needs EXECUTE on
-- keel.allocate_plan_credits (revoked from PUBLIC, see examples/README).

WITH allocation AS (
    SELECT o.id, a.credit_type, a.allocated
      FROM organizations o
     CROSS JOIN LATERAL keel.allocate_plan_credits(o.id, COALESCE(o.plan_name, 'custom'),
                                                   COALESCE(o.total_credits, 0)) AS a
     WHERE o.ai_credits = 0 AND o.whatsapp_credits = 0     -- only unmigrated, as the seed
       AND o.email_credits = 0 AND o.sms_credits = 0
), per_org AS (
    SELECT id,
           max(allocated) FILTER (WHERE credit_type = 'ai') AS ai,
           max(allocated) FILTER (WHERE credit_type = 'whatsapp') AS whatsapp,
           max(allocated) FILTER (WHERE credit_type = 'email') AS email,
           max(allocated) FILTER (WHERE credit_type = 'sms') AS sms
      FROM allocation
     GROUP BY id
)
UPDATE organizations o
   SET ai_credits = COALESCE(p.ai, 0),
       whatsapp_credits = COALESCE(p.whatsapp, 0),
       email_credits = COALESCE(p.email, 0),
       sms_credits = COALESCE(p.sms, 0),
       updated_at = now()
  FROM per_org p
 WHERE o.id = p.id;

-- Step 3.2 as an assertion: every organization has credits of every type and
-- the columns agree with keel's balances.
DO $$
DECLARE
    bad integer;
BEGIN
    SELECT count(*) INTO bad
      FROM organizations o
     WHERE o.ai_credits = 0 AND o.whatsapp_credits = 0
       AND o.email_credits = 0 AND o.sms_credits = 0;
    IF bad > 0 THEN
        RAISE EXCEPTION 'multi-credit migration left % organization(s) without credits', bad;
    END IF;
    SELECT count(*) INTO bad
      FROM organizations o
     WHERE keel.get_available_credits(o.id, 'ai') <> o.ai_credits - o.ai_used_credits
        OR keel.get_available_credits(o.id, 'whatsapp') <> o.whatsapp_credits - o.whatsapp_used_credits
        OR keel.get_available_credits(o.id, 'email') <> o.email_credits - o.email_used_credits
        OR keel.get_available_credits(o.id, 'sms') <> o.sms_credits - o.sms_used_credits;
    IF bad > 0 THEN
        RAISE EXCEPTION 'organizations columns disagree with keel credit balances for % organization(s)', bad;
    END IF;
END
$$;
