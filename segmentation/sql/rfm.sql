-- RFM scores and segments, in the portable SQL of features.sql (the same text runs on DuckDB and Spark).
-- Input tables (one row per customer; rfm_store_customers.sql or segmentation/rfm.py make the first):
--   rfm_customers(customer_id, recency_days, frequency, monetary, returns), built from the orders strictly
--       before the as-of date, where an order's value is its net amount: value >= 0 is a purchase (zero-amount
--       orders count), value < 0 is a return.
--   rfm_rules(segment, r_min, r_max, f_min, f_max): a partition of the 5 x 5 (R, F) grid (checked in rfm.py).
-- Definitions
--   recency_days  days from the date of the customer's last purchase to the as-of date (1 = the day before).
--   frequency     number of purchase orders (returns are not orders bought).
--   monetary      total net spend: the sum of every order's value, returns included (netted), rounded to
--                 6 decimals so that floating-point summation order cannot break or make ties between runs.
--   returns       number of return orders (value < 0), netted into monetary.
--   r, f, m       1..5 rank-based quintiles, 5 = best on every axis (recency: fewest days). Customers are sorted
--                 worst-to-best by the value, ties broken by customer_id, and cut into 5 groups with ntile(5):
--                 group sizes differ by at most one (the first n mod 5 groups get the extra customer), so ties
--                 never collapse bins. Tied customers may therefore get neighbouring scores, in customer_id order.
--   segment       the rule whose R and F ranges contain (r, f).
-- r, f, m are cast to BIGINT so both engines write the same Parquet types.
-- Customers whose every order is a return (frequency 0) have no purchase and are not scored (counted by rfm.py).
-- query: customer_rfm
WITH scored AS (
    SELECT customer_id, recency_days, frequency, monetary, returns,
           CAST(ntile(5) OVER (ORDER BY recency_days DESC, customer_id) AS BIGINT) AS r,
           CAST(ntile(5) OVER (ORDER BY frequency, customer_id) AS BIGINT) AS f,
           CAST(ntile(5) OVER (ORDER BY monetary, customer_id) AS BIGINT) AS m
    FROM rfm_customers
    WHERE frequency > 0
)
SELECT s.customer_id, s.recency_days, s.frequency, s.monetary, s.r, s.f, s.m, rl.segment, s.returns
FROM scored s
JOIN rfm_rules rl ON s.r BETWEEN rl.r_min AND rl.r_max AND s.f BETWEEN rl.f_min AND rl.f_max
ORDER BY s.customer_id
