-- definition: {"event": {"name": "product_viewed", "sources": ["online_store"], "where": [{"key": "category", "op": "eq", "value": "Jacket"}], "count": {"op": "gte", "value": 1}, "period": {"last_days": 30}}}
-- p0: String = "product_viewed"
-- p1: Array(String) = ["online_store"]
-- p2: String = "category"
-- p3: String = "Jacket"
-- p4: DateTime64(3, 'UTC') = "2026-10-31 21:00:00.000"
-- p5: DateTime64(3, 'UTC') = "2026-11-30 09:00:00.001"
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
SELECT count() AS members
FROM (
    SELECT DISTINCT customer_id
    FROM (
        SELECT customer_id
        FROM event_context_strings
        WHERE partner_id = {partner:UUID} AND customer_id != ''
          AND name = {p0:String}
          AND has({p1:Array(String)}, source)
          AND key = {p2:String}
          AND value = {p3:String}
          AND event_time >= {p4:DateTime64(3, 'UTC')}
          AND event_time < {p5:DateTime64(3, 'UTC')}
        UNION ALL
        SELECT argMax(customer_id, linked_at)
        FROM identity_links
        WHERE partner_id = {partner:UUID} AND anonymous_id IN (
            SELECT anonymous_id
            FROM event_context_strings
            WHERE partner_id = {partner:UUID} AND customer_id = '' AND anonymous_id != ''
              AND name = {p0:String}
              AND has({p1:Array(String)}, source)
              AND key = {p2:String}
              AND value = {p3:String}
              AND event_time >= {p4:DateTime64(3, 'UTC')}
              AND event_time < {p5:DateTime64(3, 'UTC')}
        )
        GROUP BY anonymous_id
    )
)
