-- definition: {"event": {"name": "purchase_completed", "where": [{"key": "points", "op": "gt", "value": 100}]}}
-- p0: String = "purchase_completed"
-- p1: String = "points"
-- p2: Float64 = 100.0
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
        SELECT customer_id
        FROM events
        WHERE partner_id = {partner:UUID} AND customer_id != ''
          AND name = {p0:String}
          AND context_numbers[{p1:String}] > {p2:Float64}
        UNION ALL
        SELECT argMax(customer_id, linked_at)
        FROM identity_links
        WHERE partner_id = {partner:UUID} AND anonymous_id IN (
            SELECT anonymous_id
            FROM events
            WHERE partner_id = {partner:UUID} AND customer_id = '' AND anonymous_id != ''
              AND name = {p0:String}
              AND context_numbers[{p1:String}] > {p2:Float64}
        )
        GROUP BY anonymous_id
    )
)
