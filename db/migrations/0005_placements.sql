CREATE TABLE `product_pairs` (
	`product_id` text NOT NULL,
	`other_id` text NOT NULL,
	`orders` integer NOT NULL,
	`computed_at` text NOT NULL,
	PRIMARY KEY(`product_id`, `other_id`)
);
--> statement-breakpoint
ALTER TABLE `events` ADD `placement` text;--> statement-breakpoint
ALTER TABLE `events` ADD `position` integer;