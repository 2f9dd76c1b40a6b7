ALTER TABLE draft_table RENAME TO final_table;
