-- expect: rename-enum-value
ALTER TYPE mood RENAME VALUE 'sad' TO 'blue';
