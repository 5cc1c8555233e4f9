CREATE TABLE `shard_move_parts` (
	`move_id` text NOT NULL,
	`part` integer NOT NULL,
	`table_name` text NOT NULL,
	`rows` text NOT NULL,
	`created_at` text NOT NULL,
	PRIMARY KEY(`move_id`, `part`)
);
