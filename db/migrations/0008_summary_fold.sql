ALTER TABLE `customer_summaries` ADD `last_day_spend` real DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE `customer_summaries` ADD `revision` text DEFAULT '' NOT NULL;--> statement-breakpoint
-- Backfill the last purchase day's total from the orders already stored (as orders.repo.ts computes it).
UPDATE `customer_summaries` SET
  `last_day_spend` = coalesce((SELECT sum(total) FROM `orders` o WHERE o.customer_id = `customer_summaries`.customer_id AND substr(placed_at, 1, 10) = substr(`customer_summaries`.last_order_at, 1, 10)), 0);
