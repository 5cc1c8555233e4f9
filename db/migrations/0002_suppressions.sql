CREATE TABLE `suppressions` (
	`key` text PRIMARY KEY NOT NULL,
	`kind` text NOT NULL,
	`created_at` text NOT NULL
);
--> statement-breakpoint
CREATE INDEX `customers_merged_into_idx` ON `customers` (`merged_into`);