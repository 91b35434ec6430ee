-- definition: {"any": [{"profile": {"field": "birthday", "op": "exists"}}, {"profile": {"field": "consents.email", "op": "eq", "value": true}}, {"profile": {"field": "attributes.tier", "op": "in", "value": ["gold", "platinum"]}}, {"profile": {"field": "email", "op": "contains", "value": "@example.com"}}]}
-- p0: String = "email"
-- p1: Bool = true
-- p2: String = "tier"
-- p3: Array(String) = ["gold","platinum"]
-- p4: String = "@example.com"
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
WHERE customer_id IN (
        SELECT customer_id
        FROM profiles
        WHERE birthday IS NOT NULL
    )
  OR customer_id IN (
        SELECT customer_id
        FROM profiles
        WHERE mapContains(consents, {p0:String}) AND consents[{p0:String}] = {p1:Bool}
    )
  OR customer_id IN (
        SELECT customer_id
        FROM profiles
        WHERE mapContains(attributes_strings, {p2:String}) AND has({p3:Array(String)}, attributes_strings[{p2:String}])
    )
  OR customer_id IN (
        SELECT customer_id
        FROM profiles
        WHERE position(email, {p4:String}) > 0
    )
