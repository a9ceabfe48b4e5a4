-- rfm_customers from the store (input of rfm.sql), in the portable SQL of features.sql: one row per customer with
-- a counted order (not cancelled) before $as_of. An order's value is the sum of its line amounts; value < 0 is a
-- return. Only an order holding a negative line can have a negative value, so only those orders are summed one by
-- one; spend is summed per customer straight from the lines (no per-order aggregation of every order).
-- recency_days is NULL for a customer whose every order is a return (not scored by rfm.sql).
-- query: rfm_customers
WITH counted AS (
    SELECT order_id, customer_id, ordered_at FROM orders WHERE ordered_at < $as_of AND status <> 'cancelled'
),
return_orders AS (
    SELECT order_id FROM order_items
    WHERE order_id IN (SELECT order_id FROM order_items WHERE amount < 0)
    GROUP BY order_id HAVING sum(amount) < 0
),
order_stats AS (
    SELECT c.customer_id,
           max(c.ordered_at) FILTER (WHERE r.order_id IS NULL) AS last_purchase,
           count(*) FILTER (WHERE r.order_id IS NULL) AS frequency,
           count(r.order_id) AS returns
    FROM counted c LEFT JOIN return_orders r ON r.order_id = c.order_id
    GROUP BY c.customer_id
),
spend AS (
    SELECT c.customer_id, sum(i.amount) AS monetary
    FROM order_items i JOIN counted c ON c.order_id = i.order_id
    GROUP BY c.customer_id
)
SELECT o.customer_id, days_between(o.last_purchase, $as_of) AS recency_days, o.frequency,
       round(coalesce(s.monetary, 0), 6) AS monetary, o.returns
FROM order_stats o LEFT JOIN spend s ON s.customer_id = o.customer_id
