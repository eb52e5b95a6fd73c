-- Benchmark data for `tools/dev bench`, set-based: :principals principals, each holding one
-- active voluntary mandate for :'service', given to one of :principals / :per_rep
-- representatives (:per_rep principals each).  BSNs are generated here and pass the 11-check
-- (weights 9..2 for the first eight digits; the check digit is that sum mod 11, and prefixes
-- whose sum mod 11 is 10 have no valid BSN and are skipped).
--
--   psql -X -q -At -F ' ' -v principals=10000 -v per_rep=5 -v service=gemeente-afval -f data.sql
--
-- prints one line per mandate: "bsn:REPRESENTATIVE bsn:PRINCIPAL".
\set ON_ERROR_STOP 1
BEGIN;

CREATE TEMP TABLE bench_parties ON COMMIT DROP AS
SELECT row_number() OVER (ORDER BY prefix) AS n,
       'bsn:' || prefix::text || (weighted % 11)::text AS bsn
FROM (
  SELECT prefix,
         9 * (prefix / 10000000 % 10) + 8 * (prefix / 1000000 % 10) + 7 * (prefix / 100000 % 10)
       + 6 * (prefix / 10000 % 10) + 5 * (prefix / 1000 % 10) + 4 * (prefix / 100 % 10)
       + 3 * (prefix / 10 % 10) + 2 * (prefix % 10) AS weighted
  -- 8-digit prefixes from 20000000: far from the demo BSNs (9999…); 10 in 11 are usable.
  FROM generate_series(20000000, 20000000 + 2 * (:principals + :principals / :per_rep)) AS prefix
) AS candidates
WHERE weighted % 11 < 10;

INSERT INTO mandates (principal, representative, service, kind, status, valid_from, valid_until,
                      initiated_by, origin)
SELECT p.bsn, r.bsn, :'service', 'voluntary', 'active', now() - interval '1 day',
       now() + interval '30 days', 'principal', 'api'
FROM bench_parties AS p
JOIN bench_parties AS r ON r.n = :principals + 1 + (p.n - 1) / :per_rep
WHERE p.n <= :principals;

SELECT r.bsn, p.bsn
FROM bench_parties AS p
JOIN bench_parties AS r ON r.n = :principals + 1 + (p.n - 1) / :per_rep
WHERE p.n <= :principals
ORDER BY p.n;

COMMIT;

ANALYZE mandates;
