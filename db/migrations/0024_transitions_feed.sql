CREATE TABLE `feed_sequences` (
	`name` text PRIMARY KEY NOT NULL,
	`next` integer NOT NULL
);
--> statement-breakpoint
ALTER TABLE `job_runs` ADD `feed_from` integer;--> statement-breakpoint
ALTER TABLE `stage_transitions` ADD `feed_id` integer;--> statement-breakpoint
CREATE INDEX `stage_transitions_feed_idx` ON `stage_transitions` (`feed_id`);