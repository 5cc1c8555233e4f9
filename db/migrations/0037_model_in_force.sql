ALTER TABLE `model_params` ADD `in_force_at` text DEFAULT '1970-01-01T00:00:00.000Z';--> statement-breakpoint
CREATE INDEX `model_params_in_force_idx` ON `model_params` (`model`,`id`) WHERE in_force_at IS NOT NULL;--> statement-breakpoint
-- Every fit stored so far was in force as soon as it was stored.
UPDATE `model_params` SET `in_force_at` = `fitted_at`;
