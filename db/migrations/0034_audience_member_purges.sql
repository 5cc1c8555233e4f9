CREATE TABLE `audience_member_purges` (
	`audience_id` text PRIMARY KEY NOT NULL,
	`requested_at` text NOT NULL
);
