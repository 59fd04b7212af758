-- A report rewrites its device's row. Half of every page of devices is
-- left free for the next versions of its rows, so that the update stays
-- on the page and, as no indexed column changes in a periodic report,
-- adds no index entry (a HOT update). Pages already full get the room
-- as they are rewritten (VACUUM FULL devices applies it at once).
ALTER TABLE devices SET (fillfactor = 50);
