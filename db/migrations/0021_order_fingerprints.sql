ALTER TABLE `import_batches` ADD `changed` integer DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE `import_batches` ADD `changed_ids` text DEFAULT '[]' NOT NULL;--> statement-breakpoint
CREATE INDEX `import_batches_changed_idx` ON `import_batches` (`import_id`) WHERE "import_batches"."changed" > 0;--> statement-breakpoint
-- Orders stored before this have no fingerprint: a resend of one answers `changed: null` (unknown).
ALTER TABLE `orders` ADD `fingerprint` text;