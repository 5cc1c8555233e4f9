CREATE TABLE `customer_category_lapses` (
	`category_id` text NOT NULL,
	`customer_id` text NOT NULL,
	`clv_at_stake` real NOT NULL,
	`overdue_ratio` real NOT NULL,
	`probability_alive` real NOT NULL,
	`expected_next_order_at` text NOT NULL,
	`run_id` text NOT NULL,
	PRIMARY KEY(`category_id`, `customer_id`)
);
--> statement-breakpoint
CREATE INDEX `ccl_customer_idx` ON `customer_category_lapses` (`customer_id`);--> statement-breakpoint
CREATE INDEX `ccl_at_stake_idx` ON `customer_category_lapses` (`category_id`,`clv_at_stake`,`customer_id`);--> statement-breakpoint
CREATE INDEX `ccl_overdue_idx` ON `customer_category_lapses` (`category_id`,`overdue_ratio`,`customer_id`);--> statement-breakpoint
CREATE INDEX `ccl_alive_idx` ON `customer_category_lapses` (`category_id`,`probability_alive`,`customer_id`);--> statement-breakpoint
CREATE INDEX `ccl_next_idx` ON `customer_category_lapses` (`category_id`,`expected_next_order_at`,`customer_id`);--> statement-breakpoint
CREATE TABLE `insight_rollups` (
	`run_id` text PRIMARY KEY NOT NULL,
	`computed_at` text NOT NULL,
	`as_of` text NOT NULL,
	`counts` text NOT NULL
);
--> statement-breakpoint
CREATE INDEX `insight_rollups_computed_idx` ON `insight_rollups` (`computed_at`);--> statement-breakpoint
ALTER TABLE `customer_scores` ADD `clv_at_stake` real DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE `customer_scores` ADD `overdue_ratio` real DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE `customer_scores` ADD `expected_next_order_at` text DEFAULT '' NOT NULL;--> statement-breakpoint
ALTER TABLE `customer_scores` ADD `offer_guidance` text;--> statement-breakpoint
CREATE INDEX `customer_scores_at_stake_idx` ON `customer_scores` (`clv_at_stake`,`customer_id`);--> statement-breakpoint
CREATE INDEX `customer_scores_overdue_idx` ON `customer_scores` (`overdue_ratio`,`customer_id`);--> statement-breakpoint
CREATE INDEX `customer_scores_alive_idx` ON `customer_scores` (`probability_alive`,`customer_id`);--> statement-breakpoint
CREATE INDEX `customer_scores_next_idx` ON `customer_scores` (`expected_next_order_at`,`customer_id`);--> statement-breakpoint
CREATE INDEX `customer_scores_stage_at_stake_idx` ON `customer_scores` (`stage`,`clv_at_stake`,`customer_id`);--> statement-breakpoint
CREATE INDEX `customer_scores_stage_overdue_idx` ON `customer_scores` (`stage`,`overdue_ratio`,`customer_id`);--> statement-breakpoint
CREATE INDEX `customer_scores_stage_alive_idx` ON `customer_scores` (`stage`,`probability_alive`,`customer_id`);--> statement-breakpoint
CREATE INDEX `customer_scores_stage_next_idx` ON `customer_scores` (`stage`,`expected_next_order_at`,`customer_id`);--> statement-breakpoint
ALTER TABLE `identities` ADD `match_key` text;