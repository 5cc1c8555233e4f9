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
CREATE TABLE `customer_summaries` (
	`customer_id` text PRIMARY KEY NOT NULL,
	`orders` integer NOT NULL,
	`purchase_days` integer NOT NULL,
	`first_order_at` text NOT NULL,
	`last_order_at` text NOT NULL,
	`spend` real NOT NULL,
	`positive_orders` integer NOT NULL,
	`positive_spend` real NOT NULL,
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
CREATE INDEX `products_category_idx` ON `products` (`category_id`,`in_stock`);