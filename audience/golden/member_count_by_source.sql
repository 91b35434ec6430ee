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
SELECT source, uniqExact(customer) AS members
FROM (
    SELECT customer_id AS customer, source
    FROM events
    WHERE partner_id = {partner:UUID} AND customer_id != ''
      AND (
            (name = {p0:String} AND has({p1:Array(String)}, source) AND context_strings[{p2:String}] = {p3:String} AND event_time >= {p4:DateTime64(3, 'UTC')} AND event_time < {p5:DateTime64(3, 'UTC')})
            OR (name = {p6:String} AND event_time >= {p4:DateTime64(3, 'UTC')} AND event_time < {p7:DateTime64(3, 'UTC')})
            OR (name = {p6:String})
        )
    UNION ALL
    SELECT l.customer AS customer, e.source
    FROM (
        SELECT anonymous_id, source
        FROM events
        WHERE partner_id = {partner:UUID} AND customer_id = '' AND anonymous_id != ''
          AND (
            (name = {p0:String} AND has({p1:Array(String)}, source) AND context_strings[{p2:String}] = {p3:String} AND event_time >= {p4:DateTime64(3, 'UTC')} AND event_time < {p5:DateTime64(3, 'UTC')})
            OR (name = {p6:String} AND event_time >= {p4:DateTime64(3, 'UTC')} AND event_time < {p7:DateTime64(3, 'UTC')})
            OR (name = {p6:String})
        )
    ) AS e
    INNER JOIN (
        SELECT anonymous_id, argMax(customer_id, linked_at) AS customer
        FROM identity_links
        WHERE partner_id = {partner:UUID} AND anonymous_id IN (
            SELECT anonymous_id
            FROM events
            WHERE partner_id = {partner:UUID} AND customer_id = '' AND anonymous_id != ''
              AND (
            (name = {p0:String} AND has({p1:Array(String)}, source) AND context_strings[{p2:String}] = {p3:String} AND event_time >= {p4:DateTime64(3, 'UTC')} AND event_time < {p5:DateTime64(3, 'UTC')})
            OR (name = {p6:String} AND event_time >= {p4:DateTime64(3, 'UTC')} AND event_time < {p7:DateTime64(3, 'UTC')})
            OR (name = {p6:String})
        )
        )
        GROUP BY anonymous_id
    ) AS l ON l.anonymous_id = e.anonymous_id
)
WHERE customer IN (
    SELECT customer_id
    FROM customers
    WHERE customer_id IN (
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
  AND customer_id IN (
        SELECT customer AS customer_id
        FROM (
            SELECT customer_id AS customer, event_id, event_time
            FROM events
            WHERE partner_id = {partner:UUID} AND customer_id != ''
              AND name = {p6:String}
            UNION ALL
            SELECT l.customer AS customer, e.event_id, e.event_time
            FROM (
                SELECT anonymous_id, event_id, event_time
                FROM events
                WHERE partner_id = {partner:UUID} AND customer_id = '' AND anonymous_id != ''
                  AND name = {p6:String}
            ) AS e
            INNER JOIN (
                SELECT anonymous_id, argMax(customer_id, linked_at) AS customer
                FROM identity_links
                WHERE partner_id = {partner:UUID} AND anonymous_id IN (
                    SELECT anonymous_id
                    FROM events
                    WHERE partner_id = {partner:UUID} AND customer_id = '' AND anonymous_id != ''
                      AND name = {p6:String}
                )
                GROUP BY anonymous_id
            ) AS l ON l.anonymous_id = e.anonymous_id
        )
        GROUP BY customer
        HAVING NOT (countIf(event_time >= {p4:DateTime64(3, 'UTC')} AND event_time < {p5:DateTime64(3, 'UTC')}) > 0) AND max(event_time) >= {p4:DateTime64(3, 'UTC')} AND max(event_time) < {p7:DateTime64(3, 'UTC')} AND max(event_time) < {p8:DateTime64(3, 'UTC')}
    )
  AND customer_id IN (
        SELECT customer_id
        FROM profiles
        WHERE birthday IS NOT NULL
    )
)
GROUP BY source
ORDER BY source
