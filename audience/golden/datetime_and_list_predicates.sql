-- definition: {"event": {"name": "purchase_completed", "where": [{"key": "paid_at", "op": "between", "value": ["2026-11-01T00:00:00+03:00", "2026-11-15T00:00:00+03:00"]}, {"key": "total", "op": "in", "value": [10, 20.5]}, {"key": "gift", "op": "eq", "value": true}]}}
-- p0: String = "purchase_completed"
-- p1: String = "paid_at"
-- p2: DateTime64(3, 'UTC') = "2026-10-31 21:00:00.000"
-- p3: DateTime64(3, 'UTC') = "2026-11-14 21:00:00.000"
-- p4: String = "total"
-- p5: Array(Float64) = [10.0,20.5]
-- p6: String = "gift"
-- p7: Bool = true
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
          AND parseDateTime64BestEffortOrNull(context_strings[{p1:String}], 3, 'UTC') BETWEEN {p2:DateTime64(3, 'UTC')} AND {p3:DateTime64(3, 'UTC')}
          AND has({p5:Array(Float64)}, context_numbers[{p4:String}])
          AND context_booleans[{p6:String}] = {p7:Bool}
        UNION ALL
        SELECT argMax(customer_id, linked_at)
        FROM identity_links
        WHERE partner_id = {partner:UUID} AND anonymous_id IN (
            SELECT anonymous_id
            FROM events
            WHERE partner_id = {partner:UUID} AND customer_id = '' AND anonymous_id != ''
              AND name = {p0:String}
              AND parseDateTime64BestEffortOrNull(context_strings[{p1:String}], 3, 'UTC') BETWEEN {p2:DateTime64(3, 'UTC')} AND {p3:DateTime64(3, 'UTC')}
              AND has({p5:Array(Float64)}, context_numbers[{p4:String}])
              AND context_booleans[{p6:String}] = {p7:Bool}
        )
        GROUP BY anonymous_id
    )
)
