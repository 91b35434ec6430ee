-- definition: {"all": [{"event": {"name": "product_viewed", "sources": ["online_store"], "where": [{"key": "category", "op": "eq", "value": "Jacket"}], "count": {"op": "gte", "value": 1}, "period": {"last_days": 30}}}, {"not": {"event": {"name": "purchase_completed", "period": {"last_days": 30}}}}, {"last_event": {"name": "purchase_completed", "period": {"between": ["2026-11-01", "2026-11-30"]}}}, {"days_since_last": {"name": "purchase_completed", "op": "gte", "value": 14}}, {"profile": {"field": "birthday", "op": "exists"}}]}
-- p0: String = "product_viewed"
-- p1: Array(String) = ["online_store"]
-- p2: String = "category"
-- p3: String = "Jacket"
-- p4: DateTime64(3, 'UTC') = "2026-10-31 21:00:00.000"
-- p5: DateTime64(3, 'UTC') = "2026-11-30 09:00:00.001"
-- p6: String = "purchase_completed"
-- p7: DateTime64(3, 'UTC') = "2026-11-30 21:00:00.000"
-- p8: DateTime64(3, 'UTC') = "2026-11-16 21:00:00.000"
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
SELECT source, uniqExact(customer) AS members
FROM customer_events
WHERE customer IN (
        SELECT customer_id
        FROM known_customers
        WHERE customer_id IN (
            SELECT customer
            FROM customer_events
            WHERE name = {p0:String}
              AND has({p1:Array(String)}, source)
              AND mapContains(context_strings, {p2:String}) AND context_strings[{p2:String}] = {p3:String}
              AND event_time >= {p4:DateTime64(3, 'UTC')}
              AND event_time < {p5:DateTime64(3, 'UTC')}
        )
      AND customer_id NOT IN (
            SELECT customer
            FROM customer_events
            WHERE name = {p6:String}
              AND event_time >= {p4:DateTime64(3, 'UTC')}
              AND event_time < {p5:DateTime64(3, 'UTC')}
        )
      AND customer_id IN (
            SELECT customer
            FROM customer_events
            WHERE name = {p6:String}
            GROUP BY customer
            HAVING max(event_time) >= {p4:DateTime64(3, 'UTC')} AND max(event_time) < {p7:DateTime64(3, 'UTC')}
        )
      AND customer_id IN (
            SELECT customer
            FROM customer_events
            WHERE name = {p6:String}
            GROUP BY customer
            HAVING max(event_time) < {p8:DateTime64(3, 'UTC')}
        )
      AND customer_id IN (
            SELECT customer_id
            FROM profiles
            WHERE birthday IS NOT NULL
        )
    )
  AND (
        (name = {p0:String} AND has({p1:Array(String)}, source) AND mapContains(context_strings, {p2:String}) AND context_strings[{p2:String}] = {p3:String} AND event_time >= {p4:DateTime64(3, 'UTC')} AND event_time < {p5:DateTime64(3, 'UTC')})
        OR (name = {p6:String} AND event_time >= {p4:DateTime64(3, 'UTC')} AND event_time < {p7:DateTime64(3, 'UTC')})
        OR (name = {p6:String})
    )
GROUP BY source
ORDER BY source
