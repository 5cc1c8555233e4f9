CREATE TABLE `shard_migration` (
	`id` text PRIMARY KEY NOT NULL,
	`shards` integer NOT NULL,
	`cursor` text,
	`visited` integer DEFAULT 0 NOT NULL,
	`regions` integer DEFAULT 0 NOT NULL,
	`customers` integer DEFAULT 0 NOT NULL,
	`started_at` text NOT NULL,
	`updated_at` text NOT NULL,
	`finished_at` text
);
