-- keel itself is guard-tamper, not drop-extension
DROP EXTENSION keel;
