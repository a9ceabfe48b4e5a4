-- Kefu store schema: the contract any shop maps its own data onto (`kefu store import`).
-- Ids are text. Money is in the shop's currency (Complete Journey: US dollars). Timestamps are local, no zone.

CREATE TABLE products (
    product_id    VARCHAR PRIMARY KEY,
    title         VARCHAR NOT NULL,  -- human-readable name; demo: category, type, size and label
    description   VARCHAR,           -- longer text where the shop has it
    department    VARCHAR,
    category      VARCHAR,
    product_type  VARCHAR,
    brand         VARCHAR,           -- demo: "National" or "Private" (store brand), as dunnhumby publishes it
    manufacturer_id VARCHAR,
    package_size  VARCHAR,
    price         DOUBLE,            -- typical unit price; demo: median shelf price per unit seen in transactions,
                                     -- NULL where the product was not sold in the sample
    in_stock      BOOLEAN NOT NULL DEFAULT TRUE,
    rating        DOUBLE             -- NULL where unknown
);

CREATE TABLE customers (
    customer_id     VARCHAR PRIMARY KEY,
    age             VARCHAR,         -- demographics are bands where the source has them, else NULL
    income          VARCHAR,
    home_ownership  VARCHAR,
    marital_status  VARCHAR,
    household_size  VARCHAR,
    household_comp  VARCHAR,
    kids_count      VARCHAR,
    has_demographics BOOLEAN NOT NULL DEFAULT FALSE
);

CREATE TABLE orders (
    order_id     VARCHAR PRIMARY KEY,
    customer_id  VARCHAR NOT NULL,
    ordered_at   TIMESTAMP NOT NULL,
    status       VARCHAR NOT NULL,  -- completed | returned | cancelled | ... (demo: completed)
    store_id     VARCHAR
);

CREATE TABLE order_items (
    order_id      VARCHAR NOT NULL,
    line_no       INTEGER NOT NULL,  -- position within the order, from 1
    product_id    VARCHAR NOT NULL,  -- may name a product missing from `products` (counted by `kefu store info`)
    quantity      DOUBLE NOT NULL,   -- negative = a returned quantity (kept, counted, flagged is_return)
    amount        DOUBLE NOT NULL,   -- net amount paid for the line
    retail_disc   DOUBLE NOT NULL DEFAULT 0,  -- loyalty-card discount (positive = money off)
    coupon_disc   DOUBLE NOT NULL DEFAULT 0,  -- manufacturer coupon discount
    coupon_match_disc DOUBLE NOT NULL DEFAULT 0,
    is_return     BOOLEAN NOT NULL DEFAULT FALSE,
    PRIMARY KEY (order_id, line_no)
);

CREATE TABLE events (
    customer_id  VARCHAR NOT NULL,
    ts           TIMESTAMP NOT NULL,
    type         VARCHAR NOT NULL,  -- view | cart | purchase | return (demo: purchase, one per order line)
    product_id   VARCHAR,
    order_id     VARCHAR
);

CREATE TABLE campaigns (
    campaign_id    VARCHAR PRIMARY KEY,
    campaign_type  VARCHAR,
    start_date     DATE,
    end_date       DATE
);

CREATE TABLE campaign_members (       -- which customers a campaign targeted
    campaign_id  VARCHAR NOT NULL,
    customer_id  VARCHAR NOT NULL
);

CREATE TABLE coupons (                -- a coupon (UPC) is valid for many products within one campaign
    coupon_upc   VARCHAR NOT NULL,
    product_id   VARCHAR NOT NULL,
    campaign_id  VARCHAR NOT NULL
);

CREATE TABLE coupon_redemptions (
    customer_id  VARCHAR NOT NULL,
    coupon_upc   VARCHAR NOT NULL,
    campaign_id  VARCHAR NOT NULL,
    redeemed_at  DATE NOT NULL
);

CREATE TABLE store_meta (
    key    VARCHAR PRIMARY KEY,
    value  VARCHAR
);
