CREATE TABLE `shard_reshard` (
	`id` text PRIMARY KEY NOT NULL,
	`from_count` integer NOT NULL,
	`to_count` integer NOT NULL,
	`phase` text NOT NULL,
	`shard` integer NOT NULL,
	`part` text NOT NULL,
	`cursor` text NOT NULL,
	`scanned` integer DEFAULT 0 NOT NULL,
	`total` integer DEFAULT 0 NOT NULL,
	`written` integer DEFAULT 0 NOT NULL,
	`removed` integer DEFAULT 0 NOT NULL,
	`started_at` text NOT NULL,
	`updated_at` text NOT NULL,
	`prepared_at` text,
	`finished_at` text
);
