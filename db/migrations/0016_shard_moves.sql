CREATE TABLE `shard_fences` (
	`key` text PRIMARY KEY NOT NULL,
	`move_id` text NOT NULL,
	`created_at` text NOT NULL
);
--> statement-breakpoint
CREATE TABLE `shard_moves` (
	`id` text NOT NULL,
	`direction` text NOT NULL,
	`peer` integer NOT NULL,
	`keys` text NOT NULL,
	`customers` text NOT NULL,
	`sources` text NOT NULL,
	`status` text NOT NULL,
	`created_at` text NOT NULL,
	`updated_at` text NOT NULL,
	PRIMARY KEY(`id`, `direction`)
);
--> statement-breakpoint
CREATE INDEX `shard_moves_status_idx` ON `shard_moves` (`status`);