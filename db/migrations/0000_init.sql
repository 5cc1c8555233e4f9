CREATE TABLE `categories` (
	`id` text PRIMARY KEY NOT NULL,
	`name` text NOT NULL,
	`parent_id` text,
	`updated_at` text NOT NULL
);
--> statement-breakpoint
CREATE TABLE `customer_category_stats` (
	`customer_id` text NOT NULL,
	`category_id` text NOT NULL,
	`orders` integer NOT NULL,
	`purchase_days` integer NOT NULL,
	`units` real NOT NULL,
	`spend` real NOT NULL,
	`first_purchase_at` text NOT NULL,
	`last_purchase_at` text NOT NULL,
	`avg_unit_price` real NOT NULL,
	`discounted_units` real NOT NULL,
	`web_units` real NOT NULL,
	`store_units` real NOT NULL,
	PRIMARY KEY(`customer_id`, `category_id`)
);
--> statement-breakpoint
CREATE INDEX `ccs_category_idx` ON `customer_category_stats` (`category_id`);--> statement-breakpoint
CREATE TABLE `customer_scores` (
	`customer_id` text PRIMARY KEY NOT NULL,
	`clv_12` real NOT NULL,
	`clv_24` real NOT NULL,
	`probability_alive` real NOT NULL,
	`stage` text NOT NULL,
	`value_tier` text NOT NULL,
	`discount_sensitivity` text,
	`scored_at` text NOT NULL,
	`run_id` text NOT NULL
);
--> statement-breakpoint
CREATE INDEX `customer_scores_stage_idx` ON `customer_scores` (`stage`);--> statement-breakpoint
CREATE INDEX `customer_scores_clv_idx` ON `customer_scores` (`clv_12`);--> statement-breakpoint
CREATE TABLE `customer_summaries` (
	`customer_id` text PRIMARY KEY NOT NULL,
	`orders` integer NOT NULL,
	`purchase_days` integer NOT NULL,
	`first_order_at` text NOT NULL,
	`last_order_at` text NOT NULL,
	`spend` real NOT NULL,
	`positive_orders` integer NOT NULL,
	`positive_spend` real NOT NULL,
	`first_order_spend` real DEFAULT 0 NOT NULL,
	`web_orders` integer NOT NULL,
	`store_orders` integer NOT NULL,
	`app_orders` integer NOT NULL,
	`phone_orders` integer NOT NULL,
	`units` real NOT NULL,
	`discounted_units` real NOT NULL,
	`updated_at` text NOT NULL
);
--> statement-breakpoint
CREATE TABLE `customers` (
	`id` text PRIMARY KEY NOT NULL,
	`created_at` text NOT NULL,
	`updated_at` text NOT NULL,
	`merged_into` text
);
--> statement-breakpoint
CREATE TABLE `events` (
	`id` integer PRIMARY KEY AUTOINCREMENT NOT NULL,
	`type` text NOT NULL,
	`recommendation_id` text,
	`arm` text,
	`customer_id` text,
	`product_id` text,
	`category_id` text,
	`at` text NOT NULL,
	`dedupe_key` text NOT NULL
);
--> statement-breakpoint
CREATE UNIQUE INDEX `events_dedupe_idx` ON `events` (`dedupe_key`);--> statement-breakpoint
CREATE INDEX `events_recommendation_idx` ON `events` (`recommendation_id`);--> statement-breakpoint
CREATE INDEX `events_customer_idx` ON `events` (`customer_id`,`at`);--> statement-breakpoint
CREATE TABLE `identities` (
	`key` text PRIMARY KEY NOT NULL,
	`kind` text NOT NULL,
	`customer_id` text,
	`masked` text NOT NULL,
	`shared` integer DEFAULT false NOT NULL,
	`created_at` text NOT NULL
);
--> statement-breakpoint
CREATE INDEX `identities_customer_idx` ON `identities` (`customer_id`);--> statement-breakpoint
CREATE TABLE `identity_merges` (
	`id` integer PRIMARY KEY AUTOINCREMENT NOT NULL,
	`from_customer_id` text NOT NULL,
	`into_customer_id` text NOT NULL,
	`source` text NOT NULL,
	`at` text NOT NULL
);
--> statement-breakpoint
CREATE INDEX `identity_merges_into_idx` ON `identity_merges` (`into_customer_id`);--> statement-breakpoint
CREATE TABLE `identity_observations` (
	`source` text NOT NULL,
	`identity_key` text NOT NULL,
	PRIMARY KEY(`source`, `identity_key`)
);
--> statement-breakpoint
CREATE INDEX `identity_observations_key_idx` ON `identity_observations` (`identity_key`);--> statement-breakpoint
CREATE TABLE `ingest_checks` (
	`id` integer PRIMARY KEY AUTOINCREMENT NOT NULL,
	`ok` integer NOT NULL
);
--> statement-breakpoint
CREATE TABLE `job_runs` (
	`id` text PRIMARY KEY NOT NULL,
	`kind` text NOT NULL,
	`status` text NOT NULL,
	`cursor` text,
	`processed` integer DEFAULT 0 NOT NULL,
	`started_at` text NOT NULL,
	`finished_at` text,
	`detail` text
);
--> statement-breakpoint
CREATE TABLE `model_params` (
	`id` integer PRIMARY KEY AUTOINCREMENT NOT NULL,
	`model` text NOT NULL,
	`params` text NOT NULL,
	`fitted_at` text NOT NULL,
	`sample_size` integer NOT NULL,
	`log_likelihood` real
);
--> statement-breakpoint
CREATE INDEX `model_params_model_idx` ON `model_params` (`model`,`fitted_at`);--> statement-breakpoint
CREATE TABLE `order_lines` (
	`order_id` text NOT NULL,
	`line_no` integer NOT NULL,
	`product_id` text NOT NULL,
	`category_id` text NOT NULL,
	`quantity` real NOT NULL,
	`unit_price` real NOT NULL,
	`list_price` real NOT NULL,
	PRIMARY KEY(`order_id`, `line_no`)
);
--> statement-breakpoint
CREATE INDEX `order_lines_product_idx` ON `order_lines` (`product_id`);--> statement-breakpoint
CREATE TABLE `orders` (
	`id` text PRIMARY KEY NOT NULL,
	`customer_id` text NOT NULL,
	`channel` text NOT NULL,
	`store_id` text,
	`placed_at` text NOT NULL,
	`currency` text NOT NULL,
	`total` real NOT NULL,
	`discount_total` real NOT NULL,
	`units` real NOT NULL,
	`discounted_units` real NOT NULL,
	`recommendation_id` text,
	`created_at` text NOT NULL
);
--> statement-breakpoint
CREATE INDEX `orders_customer_placed_idx` ON `orders` (`customer_id`,`placed_at`);--> statement-breakpoint
CREATE TABLE `products` (
	`id` text PRIMARY KEY NOT NULL,
	`title` text NOT NULL,
	`category_id` text NOT NULL,
	`url` text,
	`image_url` text,
	`list_price` real NOT NULL,
	`sale_price` real,
	`in_stock` integer DEFAULT true NOT NULL,
	`active` integer DEFAULT true NOT NULL,
	`updated_at` text NOT NULL
);
--> statement-breakpoint
CREATE INDEX `products_category_idx` ON `products` (`category_id`,`in_stock`);--> statement-breakpoint
CREATE TABLE `rule_versions` (
	`rule_id` text NOT NULL,
	`version` integer NOT NULL,
	`change` text NOT NULL,
	`snapshot` text NOT NULL,
	`changed_by` text NOT NULL,
	`changed_at` text NOT NULL,
	PRIMARY KEY(`rule_id`, `version`)
);
--> statement-breakpoint
CREATE TABLE `rules` (
	`id` text PRIMARY KEY NOT NULL,
	`name` text NOT NULL,
	`action` text NOT NULL,
	`target_type` text NOT NULL,
	`target_id` text NOT NULL,
	`strength` real,
	`slot` integer,
	`segment` text,
	`starts_at` text,
	`ends_at` text,
	`enabled` integer DEFAULT true NOT NULL,
	`version` integer NOT NULL,
	`created_at` text NOT NULL,
	`updated_at` text NOT NULL
);
--> statement-breakpoint
CREATE TABLE `stage_transitions` (
	`id` integer PRIMARY KEY AUTOINCREMENT NOT NULL,
	`customer_id` text NOT NULL,
	`from_stage` text,
	`to_stage` text NOT NULL,
	`at` text NOT NULL,
	`run_id` text NOT NULL
);
--> statement-breakpoint
CREATE INDEX `stage_transitions_at_idx` ON `stage_transitions` (`at`);--> statement-breakpoint
CREATE UNIQUE INDEX `stage_transitions_run_idx` ON `stage_transitions` (`customer_id`,`run_id`);