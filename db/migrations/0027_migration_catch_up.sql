CREATE TABLE `shard_migration_changes` (
	`customer_id` text PRIMARY KEY NOT NULL
);
--> statement-breakpoint
ALTER TABLE `shard_migration` ADD `mode` text DEFAULT 'full' NOT NULL;--> statement-breakpoint
ALTER TABLE `shard_migration` ADD `phase` text;--> statement-breakpoint
ALTER TABLE `shard_migration` ADD `since` text;--> statement-breakpoint
ALTER TABLE `shard_migration` ADD `changed` integer DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE `shard_migration` ADD `pruned` integer DEFAULT 0 NOT NULL;