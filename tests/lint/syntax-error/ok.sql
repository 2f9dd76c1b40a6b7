CREATE TABLE "select" ("from" int);
