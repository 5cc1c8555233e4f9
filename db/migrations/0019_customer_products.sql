CREATE TABLE `backfills` (
	`name` text PRIMARY KEY NOT NULL,
	`cursor` text DEFAULT '' NOT NULL,
	`done_at` text
);
--> statement-breakpoint
CREATE TABLE `customer_products` (
	`customer_id` text NOT NULL,
	`product_id` text NOT NULL,
	`orders` integer NOT NULL,
	`last_purchased_at` text NOT NULL,
	PRIMARY KEY(`customer_id`, `product_id`)
) WITHOUT ROWID;
--> statement-breakpoint
-- Orders stored before this migration get their product rows from the nightly job's next run, page by
-- page with its scoring (nightly.repo.ts), not here: one statement over every order line could outlast
-- what a migration may take on a large database or shard.
INSERT INTO `backfills` (`name`) SELECT 'customer_products' WHERE EXISTS (SELECT 1 FROM `orders`);
