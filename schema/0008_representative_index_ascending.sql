-- Version 8: the representatives' listing index in ascending order.
--
-- mandates_by_representative (version 1) was (representative, created_at
-- DESC, id DESC), the order of the listing.  A new mandate is the newest
-- (created_at is the time of its transaction, and within one import the
-- ids grow in the file's order), so each went in at the start of its
-- representative's entries: a btree searches further there and splits
-- its pages in half, where at the end it splits them to fit.  A million
-- imported mandates took 2.4-2.9 s of index work that way, against 1.1 s
-- in ascending order (measured alone, INSERT … SELECT into a copy of the
-- table, this machine).  The listing reads the ascending index backwards
-- (ORDER BY created_at DESC, id DESC), which a btree does as well.
DROP INDEX mandates_by_representative;
CREATE INDEX mandates_by_representative ON mandates (representative, created_at, id);
