DROP INDEX `audience_members_sync_idx`;--> statement-breakpoint
ALTER TABLE `audience_members` ADD `shard` integer DEFAULT 0 NOT NULL;--> statement-breakpoint
CREATE INDEX `audience_members_sync_idx` ON `audience_members` (`audience_id`,`delivered`,`seen_seq`,`shard`,`customer_id`);