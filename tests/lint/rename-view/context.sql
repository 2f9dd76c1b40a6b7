-- expect: rename-view
ALTER VIEW billing_plans SET SCHEMA archive;
