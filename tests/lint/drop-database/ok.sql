-- keel:no-transaction
CREATE DATABASE analytics;
