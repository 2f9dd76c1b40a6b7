-- expect: syntax-error
CREATE TABEL t (a int);
