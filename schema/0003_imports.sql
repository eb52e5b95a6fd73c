-- Version 3: bulk imports of court-appointed mandates (filled in by the import work).
SELECT 1;
