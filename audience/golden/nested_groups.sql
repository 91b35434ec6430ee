-- definition: {"any": [{"all": [{"event": {"name": "product_viewed", "sources": ["mobile_app"]}}, {"not": {"event": {"name": "product_viewed", "sources": ["online_store"]}}}]}, {"profile": {"field": "attributes.vip", "op": "eq", "value": true}}]}
-- p0: String = "product_viewed"
-- p1: Array(String) = ["mobile_app"]
-- p2: Array(String) = ["online_store"]
-- p3: String = "vip"
-- p4: Bool = true
WITH
    links AS (
        -- each anonymous id belongs to the customer of its latest link
        SELECT anonymous_id, argMax(customer_id, linked_at) AS customer_id
        FROM identity_links
        WHERE partner_id = {partner:UUID}
        GROUP BY anonymous_id
    ),
    customer_events AS (
        -- events with the customer they belong to (a visitor's events count for the customer
        -- their anonymous id was linked to); system events and unlinked visitors belong to nobody
        SELECT
            e.event_id AS event_id,
            e.name AS name,
            e.source AS source,
            e.event_time AS event_time,
            e.context_strings AS context_strings,
            e.context_numbers AS context_numbers,
            e.context_booleans AS context_booleans,
            if(e.customer_id != '', e.customer_id, l.customer_id) AS customer
        FROM events AS e
        LEFT JOIN links AS l ON l.anonymous_id = e.anonymous_id
        WHERE e.partner_id = {partner:UUID} AND e.kind = 'customer' AND customer != ''
    ),
    profiles AS (
        -- the latest version of each profile, unless it is deleted
        SELECT *
        FROM customer_profiles FINAL
        WHERE partner_id = {partner:UUID}
    ),
    known_customers AS (
        SELECT DISTINCT customer AS customer_id FROM customer_events
        UNION DISTINCT
        SELECT customer_id FROM profiles
    )
SELECT customer_id
FROM known_customers
WHERE (
        customer_id IN (
            SELECT customer
            FROM customer_events
            WHERE name = {p0:String}
              AND has({p1:Array(String)}, source)
        )
      AND customer_id NOT IN (
            SELECT customer
            FROM customer_events
            WHERE name = {p0:String}
              AND has({p2:Array(String)}, source)
        )
    )
  OR customer_id IN (
        SELECT customer_id
        FROM profiles
        WHERE mapContains(attributes_booleans, {p3:String}) AND attributes_booleans[{p3:String}] = {p4:Bool}
    )
