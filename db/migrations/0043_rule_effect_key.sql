ALTER TABLE `rules` ADD `effect_key` text;--> statement-breakpoint
CREATE INDEX `rules_effect_key_idx` ON `rules` (`effect_key`);