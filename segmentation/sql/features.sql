-- customer_features: one row per customer with at least one counted order before the as-of moment.
--
-- Parameters
--   $as_of  TIMESTAMP, exclusive: only orders, events and coupon redemptions strictly before it count.
--           Default (segmentation/features.py): midnight of the day after the store's last order.
--   dept columns  the three placeholders (dept spend, its pass-through, dept share) are filled in by
--           segmentation/features.py:
--           one `dept_<name>` column per department among the top departments by gross spend in the store before as-of (8 by default; demo store: grocery,
--           drug_gm, produce, fuel, meat, meat_pckgd, deli, miscellaneous). <name> is the department lower-cased
--           with every run of non-alphanumerics turned into "_". Each is that department's share of the
--           customer's gross spend (see "gross spend" below), 0 when the customer spent nothing there.
--
-- Portable SQL: the same text runs on DuckDB and on Spark (segmentation/engine.py, segmentation/spark_engine.py;
-- tests/test_segmentation_portable_sql.py checks it with sqlglot). So: row_number() instead of ordered first(),
-- explicit column lists (no EXCLUDE), integer literals (a fractional literal is a DECIMAL, and Spark's decimal
-- arithmetic keeps few digits), and the engine-specific parts as functions each engine defines
-- (sql/duckdb_functions.sql, sql/spark_functions.sql): days_between, seconds_between, is_weekend.
-- Each statement is a query named by its `-- query:` line; the engine materialises it as a table of that name.
-- $as_of is a bound parameter (DuckDB writes it $as_of, the Spark engine binds it as :as_of).
--
-- Definitions
--   counted order   an order with status other than 'cancelled', ordered_at < as_of.
--   purchase line   an order line of a counted order that is not a return (is_return false and amount >= 0).
--   gross spend     sum of amount over purchase lines (returns are not subtracted; used as share denominator).
--   recency_days    days from the date of the last counted order to the as-of date (1 = bought the day before).
--   frequency       number of counted orders.
--   monetary        net spend: sum of amount over all lines of counted orders (returns are negative, so netted).
--   tenure_days     days from the date of the first counted order to the as-of date (>= 1 when as-of is midnight).
--   avg_basket_value  monetary / frequency.
--   avg_basket_size   order lines per order (lines, not quantity: quantities mix units, e.g. fuel in gallons).
--   interpurchase_days  mean gap between consecutive orders in days = (last - first) / (frequency - 1);
--                   NULL for one-order customers (no gap exists).
--   discount_share  all discounts (retail + coupon + coupon match) / (net amount + discounts) over purchase lines:
--                   the share of shelf value the customer did not pay; 0 when there is no such line.
--   coupon_share    share of purchase lines with a coupon or coupon-match discount.
--   n_coupon_redemptions  rows of coupon_redemptions for the customer dated before as-of.
--   private_label_share   share of gross spend on products whose brand is 'Private' (store brand).
--   weekend_share   share of counted orders placed on Saturday or Sunday.
--   evening_share   share of counted orders placed at or after 17:00.
--   hour_mean       mean hour of day of the orders (hour + minute / 60; linear mean, not circular).
--   trend_90d       order rate in the last 90 days before as-of divided by the customer's lifetime order rate:
--                   (orders in [as_of - 90 days, as_of) / least(90, tenure)) / (frequency / tenure);
--                   1 = steady, > 1 speeding up, 0 = nothing in the last 90 days. Customers with tenure <= 90 get 1.
--   n_views, n_carts, n_purchases  events of type view / cart / purchase before as-of (demo store: purchase
--                   events only, one per order line, so n_views = n_carts = 0 there).
--   top_department  the department with the largest gross spend (ties: name order). Spends are compared rounded to
--                   6 decimals, so that floating-point summation order (which differs between runs and engines)
--                   cannot break or make a tie; the same for top_category and the top departments.
--   top_category    the category of the (department, category) pair with the largest gross spend (ties: name
--                   order); a category name found under two departments counts separately under each.
--                   Both NULL when no purchase line names a known product.
--   as_of           the as-of moment the row was computed for (the same value on every row).
-- query: customer_category_lines
-- Step 1: one pass over the order lines of counted orders, summed per customer and (department, category) group
-- (NULL department/category = a product missing from `products`). Everything line-based below derives from it,
-- and segmentation/features.py picks the top departments from it. The lines are grouped on a small integer key
-- per (department, category) rather than on the two names, which is cheaper on tens of millions of lines.
WITH counted_orders AS (
    SELECT order_id, customer_id FROM orders WHERE ordered_at < $as_of AND status <> 'cancelled'
),
product_groups AS (
    SELECT product_id, department, category, coalesce(brand = 'Private', false) AS private_label,
           dense_rank() OVER (ORDER BY department NULLS LAST, category NULLS LAST) AS group_key
    FROM products
),
grouped AS (
    SELECT o.customer_id, p.group_key,
           count(*) AS n_lines,
           sum(i.amount) AS net_spend,
           coalesce(sum(i.amount) FILTER (WHERE NOT i.is_return AND i.amount >= 0), 0) AS gross_spend,
           coalesce(sum(i.retail_disc + i.coupon_disc + i.coupon_match_disc)
                    FILTER (WHERE NOT i.is_return AND i.amount >= 0), 0) AS discount_total,
           count(*) FILTER (WHERE NOT i.is_return AND i.amount >= 0) AS n_purchase_lines,
           count(*) FILTER (WHERE NOT i.is_return AND i.amount >= 0 AND i.coupon_disc + i.coupon_match_disc > 0)
               AS n_coupon_lines,
           coalesce(sum(i.amount) FILTER (WHERE NOT i.is_return AND i.amount >= 0 AND p.private_label), 0)
               AS private_spend
    FROM order_items i
    JOIN counted_orders o ON o.order_id = i.order_id
    LEFT JOIN product_groups p ON p.product_id = i.product_id
    GROUP BY o.customer_id, p.group_key
)
SELECT g.customer_id, d.department, d.category, g.n_lines, g.net_spend, g.gross_spend, g.discount_total,
       g.n_purchase_lines, g.n_coupon_lines, g.private_spend
FROM grouped g
LEFT JOIN (SELECT DISTINCT group_key, department, category FROM product_groups) d ON d.group_key = g.group_key;

-- query: department_spend
-- The departments by gross spend (ties: name order); segmentation/features.py keeps the first 8 for dept_<name>.
SELECT department, sum(gross_spend) AS spend
FROM customer_category_lines WHERE department IS NOT NULL
GROUP BY department ORDER BY round(spend, 6) DESC, department;

-- query: customer_features
-- Step 2: the features.
WITH
counted_orders AS (
    SELECT order_id, customer_id, ordered_at
    FROM orders
    WHERE ordered_at < $as_of AND status <> 'cancelled'
),
line_stats AS (
    SELECT customer_id,
           sum(n_lines) AS n_lines,
           sum(net_spend) AS net_spend,
           sum(gross_spend) AS gross_spend,
           sum(discount_total) AS discount_total,
           sum(n_purchase_lines) AS n_purchase_lines,
           sum(n_coupon_lines) AS n_coupon_lines,
           sum(private_spend) AS private_spend
           {dept_spend_columns}
    FROM customer_category_lines
    GROUP BY customer_id
),
department_spend AS (
    SELECT customer_id, department, sum(gross_spend) AS spend
    FROM customer_category_lines
    WHERE department IS NOT NULL AND n_purchase_lines > 0
    GROUP BY customer_id, department
),
top_department AS (
    SELECT customer_id, department AS top_department
    FROM (SELECT customer_id, department,
                 row_number() OVER (PARTITION BY customer_id ORDER BY round(spend, 6) DESC, department) AS place
          FROM department_spend) ranked
    WHERE place = 1
),
top_category AS (
    SELECT customer_id, category AS top_category
    FROM (SELECT customer_id, category,
                 row_number() OVER (PARTITION BY customer_id
                                    ORDER BY round(gross_spend, 6) DESC, category, department) AS place
          FROM customer_category_lines
          WHERE category IS NOT NULL AND n_purchase_lines > 0) ranked
    WHERE place = 1
),
order_stats AS (
    SELECT customer_id,
           count(*) AS frequency,
           min(ordered_at) AS first_order,
           max(ordered_at) AS last_order,
           avg(CASE WHEN is_weekend(ordered_at) THEN 1 ELSE 0 END) AS weekend_share,
           avg(CASE WHEN hour(ordered_at) >= 17 THEN 1 ELSE 0 END) AS evening_share,
           avg(hour(ordered_at) + minute(ordered_at) / 60) AS hour_mean,
           count(*) FILTER (WHERE ordered_at >= $as_of - INTERVAL 90 DAY) AS n_last_90d
    FROM counted_orders
    GROUP BY customer_id
),
event_counts AS (
    SELECT customer_id,
           count(*) FILTER (WHERE type = 'view') AS n_views,
           count(*) FILTER (WHERE type = 'cart') AS n_carts,
           count(*) FILTER (WHERE type = 'purchase') AS n_purchases
    FROM events WHERE ts < $as_of
    GROUP BY customer_id
),
coupon_counts AS (
    SELECT customer_id, count(*) AS n_coupon_redemptions
    FROM coupon_redemptions WHERE redeemed_at < $as_of
    GROUP BY customer_id
),
base AS (
    SELECT o.customer_id, o.frequency, o.first_order, o.last_order, o.weekend_share, o.evening_share,
           o.hour_mean, o.n_last_90d,
           greatest(days_between(o.first_order, $as_of), 1) AS tenure,
           coalesce(l.n_lines, 0) AS n_lines,
           coalesce(l.net_spend, 0) AS net_spend,
           l.gross_spend, l.discount_total, l.n_purchase_lines, l.n_coupon_lines, l.private_spend
           {dept_spend_refs}
    FROM order_stats o LEFT JOIN line_stats l ON l.customer_id = o.customer_id
)
SELECT b.customer_id,
       CAST($as_of AS TIMESTAMP) AS as_of,
       days_between(b.last_order, $as_of) AS recency_days,
       b.frequency,
       b.net_spend AS monetary,
       days_between(b.first_order, $as_of) AS tenure_days,
       b.net_spend / b.frequency AS avg_basket_value,
       b.n_lines / b.frequency AS avg_basket_size,
       CASE WHEN b.frequency > 1
            THEN seconds_between(b.first_order, b.last_order) / 86400 / (b.frequency - 1) END
           AS interpurchase_days,
       coalesce(b.discount_total / nullif(b.gross_spend + b.discount_total, 0), 0) AS discount_share,
       coalesce(b.n_coupon_lines / nullif(b.n_purchase_lines, 0), 0) AS coupon_share,
       coalesce(c.n_coupon_redemptions, 0) AS n_coupon_redemptions,
       coalesce(b.private_spend / nullif(b.gross_spend, 0), 0) AS private_label_share,
       b.weekend_share,
       b.evening_share,
       b.hour_mean,
       (b.n_last_90d / least(90, b.tenure)) / (b.frequency / b.tenure) AS trend_90d,
       coalesce(e.n_views, 0) AS n_views,
       coalesce(e.n_carts, 0) AS n_carts,
       coalesce(e.n_purchases, 0) AS n_purchases,
       td.top_department,
       tc.top_category
       {dept_share_columns}
FROM base b
LEFT JOIN event_counts e ON e.customer_id = b.customer_id
LEFT JOIN coupon_counts c ON c.customer_id = b.customer_id
LEFT JOIN top_department td ON td.customer_id = b.customer_id
LEFT JOIN top_category tc ON tc.customer_id = b.customer_id
ORDER BY b.customer_id
