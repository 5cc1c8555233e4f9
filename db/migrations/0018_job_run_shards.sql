CREATE TABLE `job_run_shards` (
	`run_id` text NOT NULL,
	`shard` integer NOT NULL,
	`processed` integer NOT NULL,
	`cursor` text NOT NULL,
	PRIMARY KEY(`run_id`, `shard`)
);
