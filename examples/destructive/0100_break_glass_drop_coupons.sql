-- keel:allow-destructive "coupons moved to Stripe promotion codes; table verified empty and exported before the drop"
--
-- 0100_break_glass_drop_coupons: the break-glass path. Part of seed 000's
-- superseded 0010_enhanced_billing downgrade (DROP TABLE coupons), done on
-- purpose: the directive makes keel call keel.allow_destructive(reason) in
-- this migration's transaction only, so the guard lets the DROP through and
-- writes the reason to keel.guard_audit. Needs a superuser or a member of
-- keel.admin_role (default keel_admin); anyone else is refused even here.

DROP TABLE IF EXISTS coupons;
