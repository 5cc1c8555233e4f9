ALTER TABLE `model_params` ADD `in_force_at` text;--> statement-breakpoint
-- Every fit stored so far was in force as soon as it was stored.
UPDATE `model_params` SET `in_force_at` = `fitted_at`;
