ALTER TABLE `shard_directory` ADD `reshard_walk` integer;--> statement-breakpoint
CREATE INDEX `shard_directory_reshard_walk_idx` ON `shard_directory` (`reshard_walk`) WHERE "shard_directory"."reshard_walk" IS NOT NULL;--> statement-breakpoint
ALTER TABLE `shard_reshard` ADD `drained` integer DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE `shard_reshard` ADD `drain_moves` integer DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE `shard_reshard` ADD `drain_passes` integer DEFAULT 0 NOT NULL;