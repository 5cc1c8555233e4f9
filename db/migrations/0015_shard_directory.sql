CREATE TABLE `shard_directory` (
	`key` text PRIMARY KEY NOT NULL,
	`shard` integer NOT NULL,
	`updated_at` text NOT NULL
);
