CREATE TABLE `erased_keys` (
	`key` text PRIMARY KEY NOT NULL,
	`at` text NOT NULL
);
--> statement-breakpoint
CREATE INDEX `erased_keys_at_idx` ON `erased_keys` (`at`);