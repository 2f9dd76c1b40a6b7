-- keel:supersedes 0004, 0010
--
-- 0011_safe_billing_models: seed 000's safe replacement of the superseded
-- 0004_billing_models and 0010_enhanced_billing (whose downgrades DROP TABLE
-- organization_billing, DROP TYPE billing_status/plan_tier CASCADE, ...).
-- The directive above makes keel record 4 and 10 as superseded: they are
-- never applied, whoever later drops their files into this folder.
--
-- Fixes against the seed's SQL preview:
--   * CREATE TYPE IF NOT EXISTS does not exist in PostgreSQL (15 or any):
--     a DO block creates the enum and ignores duplicate_object instead.
--   * ids and org_id are uuid, not VARCHAR(36): organizations.id is uuid
--     (see 0001), and a varchar -> uuid foreign key is refused.

DO $$
BEGIN
    CREATE TYPE plan_tier AS ENUM ('starter', 'growth', 'pro');
EXCEPTION
    WHEN duplicate_object THEN NULL;
END
$$;

DO $$
BEGIN
    CREATE TYPE billing_status AS ENUM ('active', 'canceled', 'past_due', 'unpaid', 'incomplete', 'trialing');
EXCEPTION
    WHEN duplicate_object THEN NULL;
END
$$;

CREATE TABLE IF NOT EXISTS organization_billing (
    id UUID NOT NULL DEFAULT gen_random_uuid(),
    org_id UUID NOT NULL,
    stripe_customer_id VARCHAR(255),
    stripe_subscription_id VARCHAR(255),
    plan plan_tier NOT NULL DEFAULT 'starter',
    status billing_status NOT NULL DEFAULT 'active',
    current_period_start TIMESTAMP,
    current_period_end TIMESTAMP,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    trial_start TIMESTAMP,
    trial_end TIMESTAMP,
    trial_used BOOLEAN NOT NULL DEFAULT false,
    coupon_code VARCHAR(100),
    coupon_discount_percent INTEGER,
    coupon_discount_amount_cents INTEGER,
    coupon_expires_at TIMESTAMP,
    last_payment_date TIMESTAMP,
    last_payment_amount_cents INTEGER,
    next_payment_date TIMESTAMP,
    next_payment_amount_cents INTEGER,
    notes TEXT,
    PRIMARY KEY (id),
    UNIQUE (org_id),
    FOREIGN KEY(org_id) REFERENCES organizations (id) ON DELETE CASCADE
);

CREATE INDEX IF NOT EXISTS ix_organization_billing_org_id ON organization_billing (org_id);
CREATE INDEX IF NOT EXISTS ix_organization_billing_stripe_customer_id ON organization_billing (stripe_customer_id);
CREATE INDEX IF NOT EXISTS ix_organization_billing_stripe_subscription_id ON organization_billing (stripe_subscription_id);
CREATE INDEX IF NOT EXISTS ix_organization_billing_coupon_code ON organization_billing (coupon_code);

CREATE TABLE IF NOT EXISTS coupons (
    id UUID NOT NULL DEFAULT gen_random_uuid(),
    code VARCHAR(100) NOT NULL,
    name VARCHAR(255) NOT NULL,
    description TEXT,
    discount_type VARCHAR(20) NOT NULL,
    discount_value INTEGER NOT NULL,
    valid_from TIMESTAMP NOT NULL,
    valid_until TIMESTAMP,
    max_uses INTEGER,
    used_count INTEGER NOT NULL DEFAULT 0,
    applicable_plans TEXT,
    min_amount_cents INTEGER,
    is_active BOOLEAN NOT NULL DEFAULT true,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    PRIMARY KEY (id)
);

CREATE UNIQUE INDEX IF NOT EXISTS ix_coupons_code ON coupons (code);
CREATE INDEX IF NOT EXISTS ix_coupons_is_active ON coupons (is_active);

CREATE TABLE IF NOT EXISTS billing_history (
    id UUID NOT NULL DEFAULT gen_random_uuid(),
    org_id UUID NOT NULL,
    stripe_payment_intent_id VARCHAR(255),
    amount_cents INTEGER NOT NULL,
    currency VARCHAR(3) NOT NULL DEFAULT 'usd',
    description VARCHAR(500) NOT NULL,
    plan plan_tier NOT NULL,
    status VARCHAR(20) NOT NULL,
    coupon_code VARCHAR(100),
    discount_amount_cents INTEGER,
    created_at TIMESTAMP NOT NULL,
    processed_at TIMESTAMP,
    PRIMARY KEY (id),
    FOREIGN KEY(org_id) REFERENCES organizations (id) ON DELETE CASCADE
);

CREATE INDEX IF NOT EXISTS ix_billing_history_org_id ON billing_history (org_id);
CREATE INDEX IF NOT EXISTS ix_billing_history_stripe_payment_intent_id ON billing_history (stripe_payment_intent_id);
