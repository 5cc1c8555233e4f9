CREATE TABLE `customer_browse` (
	`customer_id` text NOT NULL,
	`day` text NOT NULL,
	`category_id` text NOT NULL,
	`views` integer NOT NULL,
	`last_viewed_at` text NOT NULL,
	PRIMARY KEY(`customer_id`, `day`, `category_id`)
);
--> statement-breakpoint
CREATE INDEX `customer_browse_day_idx` ON `customer_browse` (`day`);--> statement-breakpoint
-- Widget events moved to their own database (EVENTS_DB). The old rows stay here, renamed with their
-- indexes, until the nightly job has moved them (worker/events/legacy-events.ts); nothing is lost.
ALTER TABLE `events` RENAME TO `legacy_events`;