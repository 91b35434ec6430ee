-- definition: {"event": {"where": [{"key": "name", "op": "eq", "value": "Bag"}]}}
-- p0: String = "name"
-- p1: String = "Bag"
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
        FROM event_context_strings
        WHERE partner_id = {partner:UUID} AND customer_id != ''
          AND key = {p0:String}
          AND value = {p1:String}
        UNION ALL
        SELECT argMax(customer_id, linked_at)
        FROM identity_links
        WHERE partner_id = {partner:UUID} AND anonymous_id IN (
            SELECT anonymous_id
            FROM event_context_strings
            WHERE partner_id = {partner:UUID} AND customer_id = '' AND anonymous_id != ''
              AND key = {p0:String}
              AND value = {p1:String}
        )
        GROUP BY anonymous_id
    )
)
