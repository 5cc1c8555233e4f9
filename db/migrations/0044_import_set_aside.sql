ALTER TABLE `import_batches` ADD `set_aside` integer DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE `import_batches` ADD `set_aside_ids` text DEFAULT '[]' NOT NULL;