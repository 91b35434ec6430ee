-- definition: {"event": {"where": [{"key": "name", "op": "eq", "value": "Bag"}]}}
-- p0: String = "name"
-- p1: String = "Bag"
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
WHERE customer_id IN (
        SELECT customer
        FROM customer_events
        WHERE mapContains(context_strings, {p0:String}) AND context_strings[{p0:String}] = {p1:String}
    )
