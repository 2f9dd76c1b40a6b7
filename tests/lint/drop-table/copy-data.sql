-- Inline COPY data, as pg_dump writes it, is data, not SQL: lint skips it
-- (the DROP TABLE inside the data is a value), keeps the line numbers after
-- it, and still sees the real DROP TABLE that follows the block.
CREATE TABLE copy_target (id int, note text);
COPY copy_target (id, note) FROM stdin;
1	DROP TABLE accounts;
2	not SQL at all: ' unbalanced quote and a ; semicolon
3	\N
\.

-- expect: drop-table
DROP TABLE accounts;
