CREATE TABLE `import_batches` (
	`import_id` text NOT NULL,
	`sequence` integer NOT NULL,
	`status` text NOT NULL,
	`digest` text NOT NULL,
	`orders` integer NOT NULL,
	`accepted` integer DEFAULT 0 NOT NULL,
	`duplicates` integer DEFAULT 0 NOT NULL,
	`suppressed` integer DEFAULT 0 NOT NULL,
	`ignored` integer DEFAULT 0 NOT NULL,
	`merges` integer DEFAULT 0 NOT NULL,
	`ignored_identifiers` integer DEFAULT 0 NOT NULL,
	`attempts` integer DEFAULT 0 NOT NULL,
	`error` text,
	`received_at` text NOT NULL,
	`updated_at` text NOT NULL,
	PRIMARY KEY(`import_id`, `sequence`)
);
--> statement-breakpoint
CREATE INDEX `import_batches_status_idx` ON `import_batches` (`import_id`,`status`,`sequence`);--> statement-breakpoint
CREATE TABLE `imports` (
	`id` text PRIMARY KEY NOT NULL,
	`source` text,
	`expected_batches` integer,
	`created_at` text NOT NULL
);
