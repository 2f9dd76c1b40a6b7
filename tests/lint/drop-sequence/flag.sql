-- expect: drop-sequence
DROP SEQUENCE invoice_no;
