-- 0020_verify_stripe_fields: seed 002 ("Stripe Integration: NO MIGRATION
-- REQUIRED") verified by grepping 001_initial_schema.sql. Here the check is
-- a migration: it makes sure the Stripe fields and their indexes exist
-- (idempotent: IF NOT EXISTS everywhere, a no-op on a schema built by 0002)
-- and then asserts the seed's list, so a database that drifted fails loudly
-- instead of being declared ready.

ALTER TABLE subscriptions ADD COLUMN IF NOT EXISTS stripe_subscription_id VARCHAR(255);
ALTER TABLE subscriptions ADD COLUMN IF NOT EXISTS stripe_customer_id VARCHAR(255);
ALTER TABLE payment_transactions ADD COLUMN IF NOT EXISTS stripe_payment_intent_id VARCHAR(255);
ALTER TABLE payment_transactions ADD COLUMN IF NOT EXISTS stripe_invoice_id VARCHAR(255);

CREATE INDEX IF NOT EXISTS idx_subscriptions_stripe_subscription_id ON subscriptions (stripe_subscription_id);
CREATE INDEX IF NOT EXISTS idx_subscriptions_stripe_customer_id ON subscriptions (stripe_customer_id);
CREATE INDEX IF NOT EXISTS idx_payment_transactions_stripe_invoice_id ON payment_transactions (stripe_invoice_id);

DO $$
DECLARE
    missing text;
BEGIN
    SELECT string_agg(format('%s.%s', t.tbl, t.col), ', ')
      INTO missing
      FROM (VALUES ('subscriptions', 'stripe_subscription_id'),
                   ('subscriptions', 'stripe_customer_id'),
                   ('payment_transactions', 'stripe_payment_intent_id'),
                   ('payment_transactions', 'stripe_invoice_id')) AS t (tbl, col)
     WHERE NOT EXISTS (SELECT 1 FROM information_schema.columns c
                        WHERE c.table_schema = current_schema()
                          AND c.table_name = t.tbl AND c.column_name = t.col
                          AND c.data_type = 'character varying'
                          AND c.character_maximum_length = 255);
    IF missing IS NOT NULL THEN
        RAISE EXCEPTION 'stripe fields missing or of the wrong type: %', missing;
    END IF;
    -- stripe_subscription_id and stripe_payment_intent_id are UNIQUE in the seed.
    IF NOT EXISTS (SELECT 1 FROM pg_index i
                    WHERE i.indrelid = 'subscriptions'::regclass AND i.indisunique
                      AND i.indkey::text = (SELECT attnum::text FROM pg_attribute
                                             WHERE attrelid = 'subscriptions'::regclass
                                               AND attname = 'stripe_subscription_id')) THEN
        RAISE EXCEPTION 'subscriptions.stripe_subscription_id is not unique';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_index i
                    WHERE i.indrelid = 'payment_transactions'::regclass AND i.indisunique
                      AND i.indkey::text = (SELECT attnum::text FROM pg_attribute
                                             WHERE attrelid = 'payment_transactions'::regclass
                                               AND attname = 'stripe_payment_intent_id')) THEN
        RAISE EXCEPTION 'payment_transactions.stripe_payment_intent_id is not unique';
    END IF;
END
$$;
