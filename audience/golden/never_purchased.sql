-- definition: {"event": {"name": "purchase_completed", "count": {"op": "eq", "value": 0}}}
-- p0: String = "purchase_completed"
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
        SELECT customer_id
        FROM events
        WHERE partner_id = {partner:UUID} AND customer_id != ''
          AND name = {p0:String}
        UNION ALL
        SELECT argMax(customer_id, linked_at)
        FROM identity_links
        WHERE partner_id = {partner:UUID} AND anonymous_id IN (
            SELECT anonymous_id
            FROM events
            WHERE partner_id = {partner:UUID} AND customer_id = '' AND anonymous_id != ''
              AND name = {p0:String}
        )
        GROUP BY anonymous_id
    )
