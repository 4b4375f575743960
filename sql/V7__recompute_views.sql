-- The definitions the analytics tables must always equal, as event_stats_hourly_recompute is
-- for the hourly stats: users and tests compare a table against its view (EXCEPT both ways).
-- The tables are written only by sql/load/derive_file.sql, from exactly the events a file added.

CREATE VIEW streaming.sessions_recompute AS
SELECT session_id,
       min(user_id)                                          AS user_id,
       min(event_time)                                       AS started_at,
       max(event_time)                                       AS ended_at,
       max(event_time) - min(event_time)                     AS duration,
       count(*)                                              AS events,
       count(*) FILTER (WHERE event_type = 'view')           AS views,
       count(*) FILTER (WHERE event_type = 'add_to_cart')    AS carts,
       count(*) FILTER (WHERE event_type = 'remove_from_cart') AS removes,
       count(*) FILTER (WHERE event_type = 'purchase')       AS purchases,
       coalesce(sum(total_amount), 0)                        AS revenue,
       bool_or(event_type = 'add_to_cart')                   AS reached_cart,
       bool_or(event_type = 'purchase')                      AS purchased
FROM streaming.events
GROUP BY session_id;

CREATE VIEW streaming.product_counts_recompute AS
SELECT product_id,
       coalesce(product_category, '')                        AS product_category,
       count(*) FILTER (WHERE event_type = 'view')           AS views,
       count(*) FILTER (WHERE event_type = 'add_to_cart')    AS add_to_cart,
       count(*) FILTER (WHERE event_type = 'remove_from_cart') AS removes,
       count(*) FILTER (WHERE event_type = 'purchase')       AS purchases,
       coalesce(sum(quantity) FILTER (WHERE event_type = 'purchase'), 0) AS units_sold,
       coalesce(sum(total_amount), 0)                        AS revenue
FROM streaming.events
GROUP BY 1, 2;

CREATE VIEW streaming.hourly_users_recompute AS
SELECT DISTINCT date_trunc('hour', event_time, 'UTC') AS hour, user_id
FROM streaming.events;
