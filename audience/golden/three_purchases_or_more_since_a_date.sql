-- definition: {"event": {"name": "purchase_completed", "count": {"op": "gte", "value": 3}, "period": {"since": "2026-11-01"}}}
-- p0: String = "purchase_completed"
-- p1: DateTime64(3, 'UTC') = "2026-10-31 21:00:00.000"
-- p2: DateTime64(3, 'UTC') = "2026-11-30 09:00:00.001"
-- p3: UInt64 = 3
WITH
    customers AS (
        -- the partner's known customers, kept by ClickHouse (migration 0007)
        SELECT DISTINCT customer_id
        FROM known_customers
        WHERE partner_id = {partner:UUID}
    ),
    profiles AS (
        -- the latest version of each profile, unless it is deleted
        SELECT *
        FROM customer_profiles FINAL
        WHERE partner_id = {partner:UUID}
    )
SELECT customer_id
FROM (
    SELECT DISTINCT customer_id
    FROM (
        SELECT customer AS customer_id
        FROM (
            SELECT customer_id AS customer, event_id, event_time
            FROM events
            WHERE partner_id = {partner:UUID} AND customer_id != ''
              AND name = {p0:String}
              AND event_time >= {p1:DateTime64(3, 'UTC')}
              AND event_time < {p2:DateTime64(3, 'UTC')}
            UNION ALL
            SELECT l.customer AS customer, e.event_id, e.event_time
            FROM (
                SELECT anonymous_id, event_id, event_time
                FROM events
                WHERE partner_id = {partner:UUID} AND customer_id = '' AND anonymous_id != ''
                  AND name = {p0:String}
                  AND event_time >= {p1:DateTime64(3, 'UTC')}
                  AND event_time < {p2:DateTime64(3, 'UTC')}
            ) AS e
            INNER JOIN (
                SELECT anonymous_id, argMax(customer_id, linked_at) AS customer
                FROM identity_links
                WHERE partner_id = {partner:UUID} AND anonymous_id IN (
                    SELECT anonymous_id
                    FROM events
                    WHERE partner_id = {partner:UUID} AND customer_id = '' AND anonymous_id != ''
                      AND name = {p0:String}
                      AND event_time >= {p1:DateTime64(3, 'UTC')}
                      AND event_time < {p2:DateTime64(3, 'UTC')}
                )
                GROUP BY anonymous_id
            ) AS l ON l.anonymous_id = e.anonymous_id
        )
        GROUP BY customer
        HAVING uniqExact(event_id) >= {p3:UInt64}
    )
)
