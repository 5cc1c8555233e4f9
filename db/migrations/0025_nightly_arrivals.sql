CREATE TABLE `shard_nightly_runs` (
	`run_id` text PRIMARY KEY NOT NULL,
	`started_at` text NOT NULL
);
--> statement-breakpoint
CREATE INDEX `shard_moves_arrived_idx` ON `shard_moves` (`direction`,`created_at`);