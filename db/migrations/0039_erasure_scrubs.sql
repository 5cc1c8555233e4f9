CREATE TABLE `erasure_scrubs` (
	`customer_id` text PRIMARY KEY NOT NULL,
	`plan` text NOT NULL,
	`due_at` text NOT NULL,
	`attempts` integer DEFAULT 0 NOT NULL,
	`created_at` text NOT NULL
);
--> statement-breakpoint
CREATE INDEX `erasure_scrubs_due_idx` ON `erasure_scrubs` (`due_at`);