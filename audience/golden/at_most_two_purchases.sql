-- definition: {"event": {"name": "purchase_completed", "count": {"op": "lte", "value": 2}}}
-- p0: String = "purchase_completed"
-- p1: UInt64 = 2
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
FROM customers
WHERE customer_id NOT IN (
        SELECT customer AS customer_id
        FROM (
            SELECT customer_id AS customer, event_id, event_time
            FROM events
            WHERE partner_id = {partner:UUID} AND customer_id != ''
              AND name = {p0:String}
            UNION ALL
            SELECT l.customer AS customer, e.event_id, e.event_time
            FROM (
                SELECT anonymous_id, event_id, event_time
                FROM events
                WHERE partner_id = {partner:UUID} AND customer_id = '' AND anonymous_id != ''
                  AND name = {p0:String}
            ) AS e
            INNER JOIN (
                SELECT anonymous_id, argMax(customer_id, linked_at) AS customer
                FROM identity_links
                WHERE partner_id = {partner:UUID} AND anonymous_id IN (
                    SELECT anonymous_id
                    FROM events
                    WHERE partner_id = {partner:UUID} AND customer_id = '' AND anonymous_id != ''
                      AND name = {p0:String}
                )
                GROUP BY anonymous_id
            ) AS l ON l.anonymous_id = e.anonymous_id
        )
        GROUP BY customer
        HAVING uniqExact(event_id) > {p1:UInt64}
    )
