-- 0104_downgrade_enhanced_billing: seed 000's superseded
-- 0010_enhanced_billing.py downgrade(): billing_history and coupons, "multiple
-- DROP COLUMN operations on organization_billing" (the seed does not list
-- them; these are the columns 0010 added per its 0011 replacement) and
-- DROP TYPE plan_tier CASCADE. Refused by the guard (KL001).

DROP TABLE billing_history;
DROP TABLE IF EXISTS coupons;
ALTER TABLE organization_billing
    DROP COLUMN trial_start,
    DROP COLUMN trial_end,
    DROP COLUMN trial_used,
    DROP COLUMN coupon_code,
    DROP COLUMN coupon_discount_percent,
    DROP COLUMN coupon_discount_amount_cents,
    DROP COLUMN coupon_expires_at,
    DROP COLUMN last_payment_date,
    DROP COLUMN last_payment_amount_cents,
    DROP COLUMN next_payment_date,
    DROP COLUMN next_payment_amount_cents,
    DROP COLUMN notes;
DROP TYPE plan_tier CASCADE;
