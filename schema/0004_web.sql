-- Version 4: web sessions for the citizen forms (filled in by the web forms work).
SELECT 1;
