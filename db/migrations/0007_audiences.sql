CREATE TABLE `audience_members` (
	`audience_id` text NOT NULL,
	`customer_id` text NOT NULL,
	`seen_seq` integer NOT NULL,
	`delivered` integer DEFAULT false NOT NULL,
	PRIMARY KEY(`audience_id`, `customer_id`)
);
--> statement-breakpoint
CREATE INDEX `audience_members_sync_idx` ON `audience_members` (`audience_id`,`delivered`,`seen_seq`,`customer_id`);--> statement-breakpoint
CREATE TABLE `audiences` (
	`id` text PRIMARY KEY NOT NULL,
	`name` text NOT NULL,
	`filters` text NOT NULL,
	`webhook_url` text,
	`match_keys` text NOT NULL,
	`secret` text NOT NULL,
	`size` integer,
	`sized_at` text,
	`sync_seq` integer DEFAULT 0 NOT NULL,
	`last_delivery_at` text,
	`last_delivery_run_id` text,
	`last_delivery_outcome` text,
	`last_delivery_status_code` integer,
	`last_delivery_error` text,
	`last_delivery_joined` integer,
	`last_delivery_left` integer,
	`created_at` text NOT NULL,
	`updated_at` text NOT NULL
);
--> statement-breakpoint
CREATE INDEX `audiences_created_idx` ON `audiences` (`created_at`,`id`);