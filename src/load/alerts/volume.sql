-- volume_spike / volume_drop (src/load/alerts/volume.rs): events per hour against the mean of
-- the same hour on the days before (only days that have events in that hour; at least $6 of
-- them, and a mean of at least $7 events, or the hour is not judged).
-- $1 file_id, $2 hours judged for a spike, $3 the hour judged for a drop (or NULL), $4 factor,
-- $5 days looked back, $6 days needed, $7 smallest baseline judged, $8 the parameters.
WITH checked AS (
    SELECT h.hour, 'volume_spike' AS kind FROM unnest($2::timestamptz[]) AS h(hour)
    UNION ALL
    SELECT $3::timestamptz, 'volume_drop' WHERE $3::timestamptz IS NOT NULL
), judged AS (
    SELECT c.kind, to_char(c.hour AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:00"Z"') AS subject,
           o.n AS observed, b.baseline,
           CASE c.kind WHEN 'volume_spike' THEN o.n > b.baseline * $4
                       ELSE o.n < b.baseline / $4 END AS breached
    FROM checked c
    CROSS JOIN LATERAL (SELECT coalesce(sum(s.event_count), 0)::float8 AS n
                        FROM streaming.event_stats_hourly s WHERE s.hour = c.hour) o
    CROSS JOIN LATERAL (
        SELECT avg(per_day.n) AS baseline FROM (
            SELECT sum(s.event_count)::float8 AS n FROM streaming.event_stats_hourly s
            WHERE s.hour = ANY (ARRAY(SELECT c.hour - make_interval(days => d)
                                      FROM generate_series(1, $5::int) AS d))
            GROUP BY s.hour) per_day
        HAVING count(*) >= $6 AND avg(per_day.n) >= $7) b
), raised AS (
    INSERT INTO streaming.alerts AS a (kind, subject, observed, baseline, expected_low,
                                      expected_high, rule, parameters, file_id)
    SELECT kind, subject, observed::numeric, baseline::numeric,
           CASE kind WHEN 'volume_drop' THEN (baseline / $4)::numeric END,
           CASE kind WHEN 'volume_spike' THEN (baseline * $4)::numeric END,
           CASE kind WHEN 'volume_spike'
               THEN 'events in the hour above baseline * factor; baseline = mean of the same hour on the days before'
               ELSE 'events in the hour below baseline / factor; baseline = mean of the same hour on the days before' END,
           $8, $1
    FROM judged WHERE breached ORDER BY kind, subject
    ON CONFLICT (kind, subject) WHERE resolved_at IS NULL DO NOTHING
    RETURNING a.kind, a.subject, a.observed, a.baseline, a.expected_low, a.expected_high
), resolved AS (
    -- A spike ends when a later hour is in range (an hour's count never falls); a drop when
    -- its hour, or a later one, is in range.
    UPDATE streaming.alerts a SET resolved_at = now(), resolved_by = $1
    FROM (SELECT kind, max(subject) AS subject FROM judged WHERE NOT breached GROUP BY kind) j
    WHERE a.kind = j.kind AND a.resolved_at IS NULL
      AND (a.subject < j.subject OR (a.kind = 'volume_drop' AND a.subject = j.subject))
    RETURNING a.kind, a.subject
)
SELECT true, kind, subject, observed::text, baseline::text, expected_low::text,
       expected_high::text FROM raised
UNION ALL
SELECT false, kind, subject, NULL, NULL, NULL, NULL FROM resolved
