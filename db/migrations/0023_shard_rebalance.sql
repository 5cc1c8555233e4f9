CREATE TABLE `shard_rebalance` (
	`id` text PRIMARY KEY NOT NULL,
	`shard_count` integer NOT NULL,
	`shard` integer NOT NULL,
	`cursor` text NOT NULL,
	`scanned` integer DEFAULT 0 NOT NULL,
	`total` integer DEFAULT 0 NOT NULL,
	`moved` integer DEFAULT 0 NOT NULL,
	`moves` integer DEFAULT 0 NOT NULL,
	`busy` integer DEFAULT 0 NOT NULL,
	`too_large` integer DEFAULT 0 NOT NULL,
	`started_at` text NOT NULL,
	`updated_at` text NOT NULL,
	`finished_at` text
);
