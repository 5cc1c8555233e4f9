ALTER TABLE `import_batches` ADD `changed` integer DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE `import_batches` ADD `changed_ids` text DEFAULT '[]' NOT NULL;--> statement-breakpoint
-- Orders stored before this have no fingerprint: a resend of one answers `changed: null` (unknown).
ALTER TABLE `orders` ADD `fingerprint` text;
