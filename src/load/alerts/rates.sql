-- reject_rate / duplicate_rate (src/load/alerts/rates.rs): the file's shares against those of
-- the last loaded files of its profile (walked back along the ledger's primary key).
-- $1 file_id (its ledger row is finished), $2 files in the baseline, $3 files needed,
-- $4 rows a file needs to be judged, $5 factor, $6 reject floor, $7 duplicate floor,
-- $8 the parameters.
WITH f AS (
    SELECT file_id, coalesce(profile, '') AS profile, rows_total, rows_rejected, rows_duplicate
    FROM streaming.ingest_files WHERE file_id = $1 AND rows_total >= $4
), recent AS (
    SELECT sum(i.rows_rejected)::float8 / nullif(sum(i.rows_total), 0) AS rejected,
           sum(i.rows_duplicate)::float8 / nullif(sum(i.rows_total), 0) AS duplicate
    FROM f CROSS JOIN LATERAL (
        SELECT i.rows_total, i.rows_rejected, i.rows_duplicate FROM streaming.ingest_files i
        WHERE i.file_id < f.file_id AND i.status = 'loaded'
          AND coalesce(i.profile, '') = f.profile
        ORDER BY i.file_id DESC LIMIT $2) i
    HAVING count(*) >= $3
), judged AS (
    SELECT k.kind, f.profile AS subject, k.observed, k.baseline,
           greatest(k.floor, k.baseline * $5) AS high,
           k.observed > greatest(k.floor, k.baseline * $5) AS breached
    FROM f, recent, LATERAL (VALUES
        ('reject_rate', f.rows_rejected::float8 / f.rows_total, recent.rejected, $6::float8),
        ('duplicate_rate', f.rows_duplicate::float8 / f.rows_total, recent.duplicate, $7::float8))
        AS k(kind, observed, baseline, floor)
), raised AS (
    INSERT INTO streaming.alerts AS a (kind, subject, observed, baseline, expected_low,
                                      expected_high, rule, parameters, file_id)
    SELECT kind, subject, round(observed::numeric, 6), round(baseline::numeric, 6), 0,
           round(high::numeric, 6),
           'the file''s share of ' || CASE kind WHEN 'reject_rate' THEN 'rejected' ELSE 'duplicate' END
           || ' rows is above max(floor, baseline * factor); baseline = the share over the last '
           'loaded files of the same source profile', $8, $1
    FROM judged WHERE breached ORDER BY kind
    ON CONFLICT (kind, subject) WHERE resolved_at IS NULL DO NOTHING
    RETURNING a.kind, a.subject, a.observed, a.baseline, a.expected_low, a.expected_high
), resolved AS (
    UPDATE streaming.alerts a SET resolved_at = now(), resolved_by = $1
    FROM judged j
    WHERE a.kind = j.kind AND a.subject = j.subject AND a.resolved_at IS NULL AND NOT j.breached
    RETURNING a.kind, a.subject
)
SELECT true, kind, subject, observed::text, baseline::text, expected_low::text,
       expected_high::text FROM raised
UNION ALL
SELECT false, kind, subject, NULL, NULL, NULL, NULL FROM resolved
