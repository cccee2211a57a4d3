CREATE TABLE rooms (id INTEGER PRIMARY KEY, name TEXT NOT NULL, area_m2 NUMERIC(8,2), building TEXT);
CREATE TABLE meters (code TEXT PRIMARY KEY, label TEXT, installed DATE);
INSERT INTO rooms VALUES (2, 'Living Room', 30.14, 'B 1');
INSERT INTO rooms VALUES (1, 'Kitchen', 12.50, 'B 1');
INSERT INTO rooms VALUES (3, 'Attic', NULL, NULL);
INSERT INTO meters VALUES ('M/1', 'Main meter', '2022-10-01');
