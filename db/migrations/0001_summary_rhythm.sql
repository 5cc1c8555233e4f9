ALTER TABLE `customer_summaries` ADD `second_purchase_at` text;--> statement-breakpoint
ALTER TABLE `customer_summaries` ADD `gap_square_sum` real DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE `customer_summaries` ADD `positive_days` integer DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE `customer_summaries` ADD `positive_day_spend` real DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE `customer_summaries` ADD `first_day_spend` real DEFAULT 0 NOT NULL;--> statement-breakpoint
-- Backfill the new columns from the orders already stored (the same definitions as orders.repo.ts).
UPDATE `customer_summaries` SET
  `second_purchase_at` = (SELECT day FROM (SELECT DISTINCT substr(placed_at, 1, 10) AS day FROM `orders` o WHERE o.customer_id = `customer_summaries`.customer_id ORDER BY day LIMIT 1 OFFSET 1)),
  `gap_square_sum` = coalesce((SELECT sum(gap * gap) FROM (SELECT julianday(day) - lag(julianday(day)) OVER (ORDER BY day) AS gap FROM (SELECT DISTINCT substr(placed_at, 1, 10) AS day FROM `orders` o WHERE o.customer_id = `customer_summaries`.customer_id))), 0),
  `positive_days` = coalesce((SELECT sum(total > 0) FROM (SELECT sum(total) AS total FROM `orders` o WHERE o.customer_id = `customer_summaries`.customer_id GROUP BY substr(placed_at, 1, 10))), 0),
  `positive_day_spend` = coalesce((SELECT sum(CASE WHEN total > 0 THEN total ELSE 0 END) FROM (SELECT sum(total) AS total FROM `orders` o WHERE o.customer_id = `customer_summaries`.customer_id GROUP BY substr(placed_at, 1, 10))), 0),
  `first_day_spend` = coalesce((SELECT max(0, sum(total)) FROM `orders` o WHERE o.customer_id = `customer_summaries`.customer_id AND substr(placed_at, 1, 10) = substr(`customer_summaries`.first_order_at, 1, 10)), 0);
