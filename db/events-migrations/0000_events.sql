CREATE TABLE `conversions` (
	`order_id` text PRIMARY KEY NOT NULL,
	`recommendation_id` text NOT NULL,
	`total` real NOT NULL,
	`at` text NOT NULL
);
--> statement-breakpoint
CREATE INDEX `conversions_recommendation_idx` ON `conversions` (`recommendation_id`,`at`);--> statement-breakpoint
CREATE INDEX `conversions_at_idx` ON `conversions` (`at`);--> statement-breakpoint
CREATE TABLE `events` (
	`id` integer PRIMARY KEY AUTOINCREMENT NOT NULL,
	`type` text NOT NULL,
	`recommendation_id` text,
	`arm` text,
	`customer_id` text,
	`product_id` text,
	`category_id` text,
	`placement` text,
	`position` integer,
	`at` text NOT NULL,
	`dedupe_key` text NOT NULL
);
--> statement-breakpoint
CREATE UNIQUE INDEX `events_dedupe_idx` ON `events` (`dedupe_key`);--> statement-breakpoint
CREATE INDEX `events_recommendation_idx` ON `events` (`recommendation_id`);--> statement-breakpoint
CREATE INDEX `events_customer_idx` ON `events` (`customer_id`,`at`);--> statement-breakpoint
CREATE INDEX `events_at_idx` ON `events` (`at`);