-- definition: {"any": [{"all": [{"event": {"name": "product_viewed", "sources": ["mobile_app"]}}, {"not": {"event": {"name": "product_viewed", "sources": ["online_store"]}}}]}, {"profile": {"field": "attributes.vip", "op": "eq", "value": true}}]}
-- p0: String = "product_viewed"
-- p1: Array(String) = ["mobile_app"]
-- p2: Array(String) = ["online_store"]
-- p3: String = "vip"
-- p4: Bool = true
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
WHERE (
        customer_id IN (
            SELECT customer_id
            FROM events
            WHERE partner_id = {partner:UUID} AND customer_id != ''
              AND name = {p0:String}
              AND has({p1:Array(String)}, source)
            UNION ALL
            SELECT argMax(customer_id, linked_at)
            FROM identity_links
            WHERE partner_id = {partner:UUID} AND anonymous_id IN (
                SELECT anonymous_id
                FROM events
                WHERE partner_id = {partner:UUID} AND customer_id = '' AND anonymous_id != ''
                  AND name = {p0:String}
                  AND has({p1:Array(String)}, source)
            )
            GROUP BY anonymous_id
        )
      AND customer_id NOT IN (
            SELECT customer_id
            FROM events
            WHERE partner_id = {partner:UUID} AND customer_id != ''
              AND name = {p0:String}
              AND has({p2:Array(String)}, source)
            UNION ALL
            SELECT argMax(customer_id, linked_at)
            FROM identity_links
            WHERE partner_id = {partner:UUID} AND anonymous_id IN (
                SELECT anonymous_id
                FROM events
                WHERE partner_id = {partner:UUID} AND customer_id = '' AND anonymous_id != ''
                  AND name = {p0:String}
                  AND has({p2:Array(String)}, source)
            )
            GROUP BY anonymous_id
        )
    )
  OR customer_id IN (
        SELECT customer_id
        FROM profiles
        WHERE mapContains(attributes_booleans, {p3:String}) AND attributes_booleans[{p3:String}] = {p4:Bool}
    )
