-- expect: drop-view
DROP VIEW billing_plans;
CREATE TABLE x (id int);
